#!/usr/bin/env bash
# One entry point for a fresh machine.
#   bash scripts/run.sh notebooks   create .venv, install, run every notebook (embedded scale), export figures
#   bash scripts/run.sh tests       create .venv, install, run the test suite (notebooks at smoke scale)
#   bash scripts/run.sh strip-filter  only set up the git filter that strips notebook outputs
# Environment knobs:
#   CNNX_VENV        virtual environment folder (default .venv)
#   PYTHON           interpreter used to create it (default python3)
#   TORCH_SPEC       torch requirement installed when torch is missing (default: torch==2.13.0
#                    on machines without an NVIDIA GPU, plain "torch" with one)
#   TORCH_INDEX_URL  optional package index for the torch wheel (e.g. PyTorch's CPU-only index)
#   SCALE            notebooks: smoke | embedded (default) | cpu (real data, fetched) | full
#   DATA_DIR         notebooks: the real data folder (e.g. ../shared/data holding VessMAP/),
#                    passed to every notebook with a DATA_DIR parameter
# Notebook arguments: name prefixes (00 02 ...) and -p NAME=VALUE for parameters (-p SEED=1);
#   each notebook's wall time, CPU time (runner + kernel) and load average are printed.
#   CNNX_OFFLINE     1: never download (the tests and CI set it); CNNX_DATA: the data cache
set -euo pipefail
cd "$(dirname "$0")/.."

task=${1:-}
shift || true
VENV=${CNNX_VENV:-.venv}
PY=${PYTHON:-python3}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[run.sh] creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  if ! python -c "import torch" >/dev/null 2>&1; then
    local spec=${TORCH_SPEC:-}
    if [ -z "$spec" ]; then
      if command -v nvidia-smi >/dev/null 2>&1; then spec="torch"; else spec="torch==2.13.0"; fi
    fi
    echo "[run.sh] installing $spec"
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
      python -m pip install -q "$spec" --index-url "$TORCH_INDEX_URL"
    else
      python -m pip install -q "$spec"
    fi
  fi
  local stamp="$VENV/.cnnexplore_nb-installed"
  local want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[run.sh] installing cnnexplore_nb and its dependencies"
    python -m pip install -q -e ".[test]"
    python -m ipykernel install --sys-prefix --name python3 >/dev/null
    echo "$want" > "$stamp"
  fi
  install_strip_filter
}

install_strip_filter() {
  # notebooks are committed without outputs: .gitattributes sends *.ipynb through the
  # "nbstripout" filter on `git add` (a notebook saved in JupyterLab keeps its outputs on
  # disk; executed copies live in notebooks/executed/, git-ignored). Only in a git checkout.
  git rev-parse --is-inside-work-tree >/dev/null 2>&1 || return 0
  local py
  py=$(command -v python)
  git config filter.nbstripout.clean "'$py' -m nbstripout --keep-id"
  git config filter.nbstripout.smudge cat
  git config diff.ipynb.textconv "'$py' -m nbstripout -t"
}

ensure_chromium() {
  # the real-browser tests need Debian's chromium + chromedriver; install them when we can
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[run.sh] installing chromium and chromium-driver with apt"
    apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null || \
      echo "[run.sh] could not install chromium: browser tests will be skipped"
  else
    echo "[run.sh] chromium not found and not root: browser tests will be skipped"
  fi
}

case "$task" in
  notebooks)
    setup
    python -m cnnexplore_nb.notebook --scale "${SCALE:-embedded}" "$@"
    ;;
  tests)
    setup
    ensure_chromium
    export CNNX_OFFLINE=1  # the tests never download; fetchers are tested against 127.0.0.1
    python -m pytest "$@"
    ;;
  strip-filter)
    install_strip_filter
    ;;
  *)
    echo "usage: bash scripts/run.sh notebooks|tests|strip-filter [args]" >&2
    exit 2
    ;;
esac

"""A counting HTTP server on 127.0.0.1, a network guard, and format-exact dataset fixtures.

The fixtures are made here in code, in the published layouts: a CIFAR-10 python tar.gz with
pickled batches, an STL-10 binary tar.gz (column-major images), a Tiny ImageNet zip of JPEG
folders, and a VessMAP folder with 8-bit TIFF images, TIFF labels named ``.png``, PNG region
masks and the four split lists as published (paths from the repository root). Hostile
archives (``tar_with``) and a user without write permission (``run_unprivileged``, nobody
when the tests run as root, who may write anywhere) are here too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

LOCAL = {"127.0.0.1", "localhost", "::1"}


def guard_network(monkeypatch) -> None:
    """Make any connection or name lookup other than 127.0.0.1 fail the test loudly."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(address, tuple) and host not in LOCAL:
            raise RuntimeError(f"test tried to connect to {address!r}: only 127.0.0.1 allowed")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOCAL:
            raise RuntimeError(f"test tried to resolve {host!r}: only 127.0.0.1 allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Server:
    """Serves ``self.root`` on 127.0.0.1 and counts GET requests per path.

    A path in ``stall`` (path -> bytes) is answered with its full Content-Length but only
    that many bytes, then the connection hangs until ``release`` is set (a download in
    progress, for a test to kill).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: Counter[str] = Counter()
        self.stall: dict[str, int] = {}
        self.release = threading.Event()
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(outer.root), **kwargs)

            def do_GET(self):  # noqa: N802 - http.server API
                path = self.path.lstrip("/")
                outer.requests[path] += 1
                if path not in outer.stall:
                    return super().do_GET()
                data = (outer.root / path).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: outer.stall[path]])
                self.wfile.flush()
                outer.release.wait(60)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path}"

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def closed_port_url(path: str) -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def point(monkeypatch, datasets, name: str, url: str, **changes) -> None:
    """Point registry entry ``name`` at ``url`` (and other field changes) for one test."""
    monkeypatch.setitem(datasets, name, dataclasses.replace(datasets[name], url=url, **changes))


def tar_with(path: Path, members: list[tuple[str, str, bytes | str]]) -> None:
    """A tar.gz of ``(name, kind, data)`` members; kind "file" (data: bytes), "symlink" or
    "hardlink" (data: the link target) or "device" (a character device)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "device": tarfile.CHRTYPE}[kind]  # fmt: skip
            info.linkname = data if isinstance(data, str) else ""
            tar.addfile(info)


def files_under(folder: Path) -> list[str]:
    """Every file, link and folder under ``folder`` (relative, sorted); links not followed."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------ a user who cannot write
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@contextlib.contextmanager
def shared_tmp() -> Iterator[Path]:
    """A temporary folder the unprivileged user can enter (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="cnnx-ro-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def can_drop_privileges() -> bool:
    """True if a process can run without write permission on a 0o555 folder."""
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


def run_unprivileged(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh Python without root's right to write anywhere (as nobody when
    the tests run as root); return ``{"ok": value}`` or ``{"error": type, "message": str}``.

    ``code`` assigns its result to ``result``; an exception is caught and reported.
    """
    wrapper = (
        "import json, sys\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "    out = {'ok': repr(result)}\n"
        "except Exception as exc:\n"
        "    out = {'error': type(exc).__name__, 'message': str(exc)}\n"
        "print('RESULT' + json.dumps(out))\n"
    )
    cmd = [sys.executable, "-c", wrapper]
    if os.geteuid() == 0:
        cmd = UNPRIVILEGED + cmd
    root = str(Path(__file__).resolve().parents[1])
    full_env = {**os.environ, "PYTHONPATH": root, "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": tempfile.gettempdir(), **(env or {})}  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    if not lines:
        raise RuntimeError(f"the unprivileged run failed: {proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT") :])


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


def make_cifar10(path: Path, *, n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """``cifar-10-python.tar.gz``: 5 training batches of ``n`` images, a test batch, meta."""
    rng = np.random.default_rng(seed)
    members, train_x, train_y = {}, [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        blob = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}  # fmt: skip
        members[f"cifar-10-batches-py/{name}"] = pickle.dumps(blob, protocol=2)
        if name == "test_batch":
            test_x, test_y = data, np.array(labels)
        else:
            train_x.append(data)
            train_y += labels
    names = [
        w.encode() for w in "airplane automobile bird cat deer dog frog horse ship truck".split()
    ]
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {b"label_names": names, b"num_cases_per_batch": n, b"num_vis": 3072}, protocol=2
    )
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    _tar(path, members)
    return {"train_x": np.concatenate(train_x), "train_y": np.array(train_y),
            "test_x": test_x, "test_y": test_y}  # fmt: skip


def make_stl10(path: Path, *, n: int = 2, seed: int = 1) -> dict[str, np.ndarray]:
    """``stl10_binary.tar.gz``: images (N, 3, 96, 96) stored column-major, labels 1..10."""
    rng = np.random.default_rng(seed)
    out, members = {}, {}
    for split in ("train", "test"):
        images = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W) as seen
        labels = rng.integers(1, 11, n).astype(np.uint8)
        members[f"stl10_binary/{split}_X.bin"] = images.transpose(0, 1, 3, 2).tobytes()
        members[f"stl10_binary/{split}_y.bin"] = labels.tobytes()
        out[f"{split}_x"], out[f"{split}_y"] = images, labels
    members["stl10_binary/class_names.txt"] = (
        b"airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n"
    )
    members["stl10_binary/unlabeled_X.bin"] = rng.integers(0, 256, 3 * 96 * 96, np.uint8).tobytes()
    _tar(path, members)
    return out


def _jpeg(rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def make_tiny_imagenet(path: Path, *, seed: int = 2) -> dict[str, list]:
    """``tiny-imagenet-200.zip`` with 2 classes, 2 training JPEGs each, 3 validation JPEGs."""
    rng = np.random.default_rng(seed)
    wnids = ["n01443537", "n01629819"]
    top = "tiny-imagenet-200"
    members = {f"{top}/wnids.txt": "\n".join(wnids).encode() + b"\n",
               f"{top}/words.txt": b"n01443537\tgoldfish\nn01629819\tsalamander\n"}  # fmt: skip
    for w in wnids:
        for k in range(2):
            members[f"{top}/train/{w}/images/{w}_{k}.JPEG"] = _jpeg(rng)
        members[f"{top}/train/{w}/{w}_boxes.txt"] = b""
    val = [("val_0.JPEG", wnids[1]), ("val_1.JPEG", wnids[0]), ("val_2.JPEG", wnids[1])]
    for name, _ in val:
        members[f"{top}/val/images/{name}"] = _jpeg(rng)
    members[f"{top}/val/val_annotations.txt"] = "".join(
        f"{name}\t{w}\t0\t0\t63\t63\n" for name, w in val
    ).encode()
    members[f"{top}/test/images/test_0.JPEG"] = _jpeg(rng)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return {"wnids": wnids, "val": val, "members": members}


def make_vessmap(folder: Path, splits: dict[str, tuple[str, ...]], *, size: int = 16,
                 prefix: str = "data/VessMAP/", seed: int = 3) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """A VessMAP folder as published, with ``size`` x ``size`` images for the ids of ``splits``.

    Returns ``{id: {"image", "label", "mask"}}`` (uint8 arrays as written; label and mask
    0/255).
    """
    rng = np.random.default_rng(seed)
    for sub in ("images", "annotator1/labels", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in splits["all"]:
        image = rng.integers(0, 256, (size, size), dtype=np.uint8)
        label = (rng.random((size, size)) < 0.3).astype(np.uint8) * 255
        mask = np.zeros((size, size), np.uint8)
        mask[1:-1, 2:-2] = 255
        Image.fromarray(image).save(folder / f"images/{i}.tiff", format="TIFF")
        Image.fromarray(label).save(folder / f"annotator1/labels/{i}.png", format="TIFF")
        Image.fromarray(mask).save(folder / f"mask/{i}.png", format="PNG")
        truth[i] = {"image": image, "label": label, "mask": mask}
    files = {"train": "train.csv", "val": "val.csv", "test": "test.csv", "all": "test_all.csv"}
    for split, name in files.items():
        rows = ["im_paths,gt_paths,mask_paths"] + [
            f"{prefix}images/{i}.tiff,{prefix}annotator1/labels/{i}.png,{prefix}mask/{i}.png"
            for i in splits[split]
        ]
        (folder / name).write_bytes("\n".join(rows).encode() + b"\n")
    return truth


def pin_vessmap(monkeypatch, folder: Path) -> None:
    """Point the registry's VessMAP pins at a made-up ``folder`` (its files' sha256), as
    the published folder's are: the fixtures are not the published bytes."""
    import importlib
    from dataclasses import replace

    sources = importlib.import_module("cnnexplore_nb.data._sources")
    from cnnexplore_nb.io import file_sha256

    entry = sources.DATASETS["vessmap"]
    pins = {rel: f"sha256:{file_sha256(folder / rel)}" for rel in entry.files}
    monkeypatch.setitem(sources.DATASETS, "vessmap", replace(entry, files=pins))


def real_data_dir() -> Path | None:
    """The folder holding the real ``VessMAP/`` (``$DATA_DIR``, else ``../shared/data`` from
    the checkout root), or None."""
    import os

    root = Path(__file__).resolve().parents[1]
    for cand in (os.environ.get("DATA_DIR"), root.parent / "shared" / "data"):
        if cand and (Path(cand) / "VessMAP" / "train.csv").is_file():
            return Path(cand).resolve()
    return None

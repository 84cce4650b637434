"""fetch: first fetch, cache hit, corrupt download, interrupted extraction, offline, readers.

Every download is served by a local HTTP server on 127.0.0.1 from fixture archives made in
code; any other connection or name lookup fails the test (``guard_network``), and
``CNNX_OFFLINE=1`` is set unless a test serves.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from _fetch_helpers import (
    Server,
    can_drop_privileges,
    closed_port_url,
    files_under,
    guard_network,
    make_cifar10,
    make_stl10,
    make_tiny_imagenet,
    md5,
    point,
    run_unprivileged,
    sha256,
    shared_tmp,
    tar_with,
)
from PIL import Image

from cnnexplore_nb import data
from cnnexplore_nb.data import FetchError, IntegrityError, fetch
from cnnexplore_nb.data.fetch import ArchiveError

fetch_module = importlib.import_module("cnnexplore_nb.data.fetch")
cli = importlib.import_module("cnnexplore_nb.data.__main__")
DATASETS = fetch_module.DATASETS
SHARED = Path(__file__).resolve().parents[2] / "shared/data/l2tww_tinyimagenet_resnet32.pth.tar"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    guard_network(monkeypatch)
    monkeypatch.setenv("CNNX_OFFLINE", "1")
    monkeypatch.setenv("CNNX_DATA", str(tmp_path / "cache"))


@pytest.fixture
def server(tmp_path, monkeypatch):
    (tmp_path / "srv").mkdir()
    srv = Server(tmp_path / "srv")
    monkeypatch.delenv("CNNX_OFFLINE")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield srv
    srv.close()


@pytest.fixture
def cifar(server, monkeypatch):
    """The CIFAR-10 entry pointed at a served fixture archive with its true md5."""
    archive = server.root / "cifar-10-python.tar.gz"
    truth = make_cifar10(archive)
    point(monkeypatch, DATASETS, "cifar10", server.url(archive.name), known_hash=md5(archive))
    return server, archive, truth


def _leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


def test_registry_pins_every_entry():
    assert set(DATASETS) == {"cifar10", "cifar100", "stl10", "tiny_imagenet", "vessmap",
                             "l2tww_source"}  # fmt: skip
    for name, e in DATASETS.items():
        assert e.name == name and e.url.startswith(("https://", "http://"))
        assert e.licence and e.citation and e.size > 0
        if e.kind == "files":
            assert e.known_hash is None and len(e.files) == 304
        else:
            alg, _, digest = e.known_hash.partition(":")
            assert len(digest) == {"md5": 32, "sha256": 64}[alg]
    assert DATASETS["cifar10"].known_hash == "md5:c58f30108f718f92721af3b95e74349a"
    assert DATASETS["tiny_imagenet"].target == "tiny-imagenet-200"
    assert fetch_module.VESSMAP_COMMIT in DATASETS["vessmap"].url


@pytest.mark.skipif(not SHARED.is_file(), reason="shared reference checkpoint absent")
def test_shared_source_network_matches_the_pin_and_is_used_in_place():
    assert sha256(SHARED) == DATASETS["l2tww_source"].known_hash
    assert fetch("l2tww_source", root=SHARED.parent) == SHARED  # offline: no download
    assert data.locate("l2tww_source", None, SHARED.parent) == SHARED


def test_data_home_precedence(monkeypatch, tmp_path):
    import pooch

    assert data.data_home(tmp_path / "x") == tmp_path / "x"
    assert data.data_home() == tmp_path / "cache"
    monkeypatch.delenv("CNNX_DATA")
    assert data.data_home() == Path(pooch.os_cache("cnnexplore_nb"))


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("yes", True), ("0", False),
                                                ("", False), ("false", False)])  # fmt: skip
def test_offline_switch_values(monkeypatch, value, offline):
    monkeypatch.setenv("CNNX_OFFLINE", value)
    assert data.is_offline() is offline


def test_unknown_name_lists_the_registry():
    with pytest.raises(KeyError, match=r"unknown dataset 'cifar'; closest: 'cifar10'.*vessmap"):
        fetch("cifar")


def test_first_fetch_extracts_once_then_hits_the_cache(cifar, tmp_path):
    server, archive, truth = cifar
    home = tmp_path / "cache"
    folder = fetch("cifar10", progress=False)
    assert folder == home / "cifar-10-batches-py" and (folder / "data_batch_5").is_file()
    assert server.requests == {archive.name: 1}
    assert _leftovers(home) == ["cifar-10-batches-py"]  # archive removed, no staging left
    assert fetch("cifar10") == folder and server.total == 1  # cache hit: no request
    train, test = data.cifar10(split="train"), data.cifar10(None, "test")  # root=None: cache
    assert np.array_equal(train.images.reshape(len(train), -1).numpy(), truth["train_x"])
    assert train.labels.tolist() == truth["train_y"].tolist() and train.classes[1] == "automobile"
    assert np.array_equal(test.images.reshape(len(test), -1).numpy(), truth["test_x"])
    assert server.total == 1


def test_data_already_in_a_user_folder_is_used_without_download(cifar, tmp_path):
    server, archive, _ = cifar
    user = tmp_path / "user"
    user.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(user, filter="data")
    assert fetch("cifar10", root=user) == user / "cifar-10-batches-py"
    assert fetch("cifar10", root=user / "cifar-10-batches-py") == user / "cifar-10-batches-py"
    assert len(data.cifar10(user)) == 15 and server.total == 0
    with pytest.raises(FileNotFoundError, match=r"(?s)did you mean split=.test.*root=None"):
        data.cifar10("test")  # a folder given by the user is never downloaded into


def test_locate_looks_in_the_roots_and_never_downloads(cifar, tmp_path):
    server, archive, _ = cifar
    assert data.locate("cifar10") is None and data.locate("cifar10", tmp_path) is None
    user = tmp_path / "user"
    user.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(user, filter="data")
    assert data.locate("cifar10", None, user) == user / "cifar-10-batches-py"
    fetch("cifar10", progress=False)
    assert data.locate("cifar10", None, user) == tmp_path / "cache" / "cifar-10-batches-py"
    assert server.total == 1


def test_corrupt_download_is_deleted_and_never_used(cifar, tmp_path):
    server, archive, _ = cifar
    good = archive.read_bytes()
    archive.write_bytes(good[:-10] + b"0123456789")  # same size, other bytes
    home = tmp_path / "cache"
    with pytest.raises(IntegrityError, match=r"(?s)corrupt and was deleted, not used.*expected"):
        fetch("cifar10", progress=False)
    assert _leftovers(home) == [] and server.total == 1
    archive.write_bytes(good)
    assert (fetch("cifar10", progress=False) / "test_batch").is_file()
    assert server.total == 2


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_extraction_leaves_nothing_half_extracted(
    cifar, tmp_path, monkeypatch, failure
):
    server, archive, truth = cifar
    home = tmp_path / "cache"
    real, calls = tarfile.TarFile.extract, []

    def extract(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise failure
        return real(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", extract)
    with pytest.raises(type(failure)):
        fetch("cifar10", progress=False)
    assert len(calls) == 3
    assert _leftovers(home) == [archive.name]  # the verified archive stays for the retry
    monkeypatch.setattr(tarfile.TarFile, "extract", real)
    folder = fetch("cifar10", progress=False)
    assert len(data.cifar10(folder)) == len(truth["train_y"])
    assert server.total == 1 and _leftovers(home) == ["cifar-10-batches-py"]


def test_truncated_archive_with_matching_hash_fails_cleanly(cifar, tmp_path, monkeypatch):
    server, archive, _ = cifar
    cut = server.root / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    point(monkeypatch, DATASETS, "cifar10", server.url(cut.name), known_hash=md5(cut))
    home = tmp_path / "cache"
    with pytest.raises(ArchiveError) as err:
        fetch("cifar10", progress=False)
    assert re.search(
        rf"cannot extract 'cifar10' from '{re.escape(str(home / cut.name))}': the archive is "
        r"truncated or corrupt \(while extracting member 'cifar-10-batches-py/\w+': EOFError",
        str(err.value),
    ), str(err.value)
    assert "nothing extracted was kept" in str(err.value)
    assert _leftovers(home) == ["cut.tar.gz"]  # no half folder, no staging
    with pytest.raises(ArchiveError, match="truncated or corrupt"):  # used as it is: same error
        fetch("cifar10", progress=False)
    assert server.total == 1


def test_a_zip_cut_short_is_named_as_such(server, monkeypatch, tmp_path):
    tiny = server.root / "tiny-imagenet-200.zip"
    make_tiny_imagenet(tiny)
    tiny.write_bytes(tiny.read_bytes()[:5000])  # the central directory is at the end: gone
    point(monkeypatch, DATASETS, "tiny_imagenet", server.url(tiny.name), known_hash=md5(tiny))
    with pytest.raises(ArchiveError, match=r"'tiny_imagenet' from .*neither a tar nor a zip "
                       r"archive \(first bytes b'PK.*; a zip cut short\)"):  # fmt: skip
        fetch("tiny_imagenet", progress=False)
    assert _leftovers(tmp_path / "cache") == [tiny.name]


UNSAFE = [  # members after a good one, and what the message says about them
    ("../x", ("../x", "file", b"outside"), r"'\.\./x' would be written outside the dataset folder"),
    ("link to /etc/passwd", ("cifar-10-batches-py/pw", "symlink", "/etc/passwd"),
     r"'cifar-10-batches-py/pw' is a link to the absolute path '/etc/passwd'"),
    ("hard link to /etc/passwd", ("cifar-10-batches-py/pw", "hardlink", "/etc/passwd"),
     r"'cifar-10-batches-py/pw' is a link to the absolute path '/etc/passwd'"),
    ("link out by ..", ("cifar-10-batches-py/up", "symlink", "../../../outside"),
     r"'cifar-10-batches-py/up' is a link pointing outside the folder \('\.\./\.\./\.\./outside'\)"),
    ("device", ("cifar-10-batches-py/dev", "device", ""),
     r"'cifar-10-batches-py/dev' is a device or another special file"),
]  # fmt: skip


@pytest.mark.parametrize(("member", "match"), [u[1:] for u in UNSAFE], ids=[u[0] for u in UNSAFE])
def test_an_unsafe_member_is_refused_naming_dataset_and_member(
    server, monkeypatch, tmp_path, member, match
):
    archive = server.root / "evil.tar.gz"
    tar_with(archive, [("cifar-10-batches-py/a", "file", b"a"), member,
                       ("cifar-10-batches-py/b", "file", b"b")])  # fmt: skip
    point(monkeypatch, DATASETS, "cifar10", server.url(archive.name), known_hash=md5(archive))
    before = files_under(tmp_path)
    with pytest.raises(ArchiveError) as err:
        fetch("cifar10", progress=False)
    msg = str(err.value)
    assert msg.startswith(
        f"refusing to extract 'cifar10' from '{tmp_path / 'cache' / archive.name}'"
    )
    assert re.search(r"its member " + match, msg), msg
    assert "nothing was written outside" in msg
    # nothing written anywhere under tmp_path but the verified archive in the cache
    assert files_under(tmp_path) == sorted([*before, "cache", f"cache/{archive.name}"])


KILLED_DOWNLOAD = """
import dataclasses
from cnnexplore_nb.data.fetch import DATASETS, fetch
DATASETS["cifar10"] = dataclasses.replace(DATASETS["cifar10"], url={url!r}, known_hash={md5!r})
fetch("cifar10", progress=False)
"""


def test_a_killed_download_leaves_no_partial_file_after_the_next_fetch(
    cifar, tmp_path, monkeypatch
):
    server, archive, truth = cifar
    server.stall[archive.name] = archive.stat().st_size // 2  # then the server hangs
    home = tmp_path / "cache"
    code = KILLED_DOWNLOAD.format(url=server.url(archive.name), md5=md5(archive))
    env = {**os.environ, "CNNX_DATA": str(home), "NO_PROXY": "127.0.0.1,localhost"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)

    def partial() -> list[Path]:  # pooch's temporary file, with bytes in it
        return [p for p in home.glob("*/*") if p.is_file() and p.stat().st_size > 0]

    deadline = time.monotonic() + 120  # a bound on waiting, not an assertion on time
    while not partial() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial() and proc.poll() is None, proc.stderr.read().decode()
    proc.kill()  # SIGKILL: no handler, no finally
    proc.wait()
    proc.stderr.close()
    # the partial file sits in this process's staging folder, not beside the data
    (left,) = _leftovers(home)
    assert left.startswith(".cnnx-partial-cifar-10-python.tar.gz-")
    assert [p.name[:3] for p in partial()] == ["tmp"]  # pooch's tmpXXXXXXXX
    del server.stall[archive.name]
    placed = home / "l2tww_tinyimagenet_resnet32.pth.tar"  # in place: a cache hit
    placed.write_bytes(b"weights")
    monkeypatch.setitem(DATASETS, "l2tww_source", dataclasses.replace(
        DATASETS["l2tww_source"], known_hash=sha256(placed)))  # fmt: skip
    assert fetch("l2tww_source") == placed and server.total == 1
    assert _leftovers(home) == [placed.name]  # removed by any fetch: its process is gone
    folder = fetch("cifar10", progress=False)
    assert len(data.cifar10(folder)) == len(truth["train_y"]) and server.total == 2


def test_the_partial_download_of_a_running_fetch_is_kept(cifar, tmp_path):
    from cnnexplore_nb.data import _extract

    home = tmp_path / "cache"
    mine = home / f".cnnx-partial-x.tar.gz-{_extract._host()}-{os.getpid()}-0abc"
    (mine / "tmpabcdefgh").parent.mkdir(parents=True)
    (mine / "tmpabcdefgh").write_bytes(b"in progress")
    fetch("cifar10", progress=False)
    assert (mine / "tmpabcdefgh").read_bytes() == b"in progress"


@pytest.mark.skipif(not can_drop_privileges(), reason="needs a user without root's rights")
@pytest.mark.parametrize("sub", ["", "new"])
def test_a_read_only_root_is_named_before_any_download(cifar, sub):
    server, archive, _ = cifar
    with shared_tmp() as tmp:
        (tmp / "ro").mkdir()
        (tmp / "ro").chmod(0o555)
        root = tmp / "ro" / sub
        code = KILLED_DOWNLOAD.format(url=server.url(archive.name), md5=md5(archive)).replace(
            'fetch("cifar10", progress=False)', f"result = fetch('cifar10', root={str(root)!r})"
        )
        out = run_unprivileged(code, env={"NO_PROXY": "127.0.0.1,localhost"})
        assert files_under(tmp) == ["ro"]
    assert out.get("error") == "PermissionError", out
    assert re.search(
        rf"^cannot write into the data folder '{re.escape(str(root))}' \(the root given: "
        r"Permission denied\), so 'cifar10' cannot be downloaded or extracted there\. Pass a "
        r"writable folder as root",
        out["message"],
    ), out["message"]
    assert server.total == 0


def test_staging_left_by_a_killed_process_is_removed(cifar, tmp_path):
    from cnnexplore_nb.data import _extract

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    home = tmp_path / "cache"
    stale = (
        home / f".cnnx-partial-cifar-10-batches-py-{_extract._host()}-{dead.stdout.strip()}-0abc"
    )
    (stale / "cifar-10-batches-py").mkdir(parents=True)
    alive = home / f".cnnx-partial-cifar-10-batches-py-{_extract._host()}-{os.getpid()}-1abc"
    alive.mkdir()
    fetch("cifar10", progress=False)
    assert not stale.exists() and alive.exists()  # a running process's staging is kept


def test_offline_error_names_url_file_and_folder_and_sends_nothing(cifar, tmp_path, monkeypatch):
    server, archive, _ = cifar
    monkeypatch.setenv("CNNX_OFFLINE", "1")
    home = tmp_path / "cache"
    with pytest.raises(FetchError) as err:
        fetch("cifar10")
    msg = str(err.value)
    assert "CNNX_OFFLINE=1" in msg and server.url(archive.name) in msg
    assert "cifar-10-python.tar.gz" in msg and str(home) in msg and "md5:" in msg
    with pytest.raises(FetchError, match="CNNX_OFFLINE"):
        data.cifar10()
    assert server.total == 0 and _leftovers(home) == []


def test_offline_uses_an_archive_placed_by_hand(cifar, tmp_path, monkeypatch):
    server, archive, truth = cifar
    monkeypatch.setenv("CNNX_OFFLINE", "1")
    home = tmp_path / "cache"
    home.mkdir()
    (home / archive.name).write_bytes(archive.read_bytes())
    assert len(data.cifar10(split="test")) == len(truth["test_y"]) and server.total == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / archive.name).write_bytes(b"not the archive")
    with pytest.raises(IntegrityError, match="in place but its hash differs: expected md5:"):
        fetch("cifar10", root=bad)
    assert (bad / archive.name).read_bytes() == b"not the archive"  # not ours to delete


def test_unreachable_server_is_a_fetch_error(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNX_OFFLINE")
    url = closed_port_url("stl10_binary.tar.gz")
    point(monkeypatch, DATASETS, "stl10", url)
    with pytest.raises(FetchError, match=r"(?s)cannot download 'stl10'.*ConnectionError.*" + url):
        fetch("stl10", progress=False)
    assert _leftovers(tmp_path / "cache") == []  # no partial download left


def test_missing_file_on_the_server_is_a_fetch_error(server, monkeypatch):
    point(monkeypatch, DATASETS, "cifar100", server.url("nope.tar.gz"))
    with pytest.raises(FetchError, match="404"):
        fetch("cifar100", progress=False)


def test_stl10_and_tiny_imagenet_fetched_and_read_by_the_readers(server, monkeypatch):
    stl = server.root / "stl10_binary.tar.gz"
    truth = make_stl10(stl)
    tiny = server.root / "tiny-imagenet-200.zip"
    made = make_tiny_imagenet(tiny)
    point(monkeypatch, DATASETS, "stl10", server.url(stl.name), known_hash=md5(stl))
    point(monkeypatch, DATASETS, "tiny_imagenet", server.url(tiny.name), known_hash=md5(tiny))
    ds = data.stl10(split="test", size=96)
    assert np.array_equal(ds.images.numpy(), truth["test_x"])
    assert ds.labels.tolist() == (truth["test_y"].astype(int) - 1).tolist()
    val = data.tiny_imagenet(split="val", size=64, progress=False)
    assert val.classes == made["wnids"]
    assert val.labels.tolist() == [made["wnids"].index(w) for _, w in made["val"]]
    import io

    ref = Image.open(io.BytesIO(made["members"]["tiny-imagenet-200/val/images/val_1.JPEG"]))
    assert np.array_equal(val.images[1].permute(1, 2, 0).numpy(), np.asarray(ref.convert("RGB")))
    assert len(data.tiny_imagenet(split="train", progress=False)) == 4
    assert server.requests == {stl.name: 1, tiny.name: 1}


def test_single_file_fetch_with_progress_bar(server, monkeypatch, tmp_path, capsys):
    blob = server.root / "model_best.pth.tar"
    blob.write_bytes(os.urandom(50_000))
    point(monkeypatch, DATASETS, "l2tww_source", server.url(blob.name), known_hash=sha256(blob))
    path = fetch("l2tww_source", progress=True)
    assert path == tmp_path / "cache" / "l2tww_tinyimagenet_resnet32.pth.tar"
    assert path.read_bytes() == blob.read_bytes() and "l2tww_source" in capsys.readouterr().err
    assert fetch("l2tww_source") == path and server.total == 1
    path.write_bytes(b"changed")
    with pytest.raises(IntegrityError, match="expected sha256:"):
        fetch("l2tww_source")


def test_fetch_all_list_and_command_line(cifar, tmp_path, capsys):
    server, _, _ = cifar
    with pytest.raises(KeyError, match="closest: 'cifar10'"):
        data.fetch_all(["cifar10", "cifar1O"])
    assert server.total == 0  # the typo is caught before any download
    assert data.fetch_all(["cifar10"], progress=False) == {
        "cifar10": tmp_path / "cache" / "cifar-10-batches-py"
    }
    table = data.list_datasets()
    assert list(table.columns) == ["name", "description", "kind", "size_mb", "target", "present",
                                   "path", "url", "hash", "licence", "citation"]  # fmt: skip
    assert table.set_index("name")["present"].to_dict() == {n: n == "cifar10" for n in DATASETS}
    assert cli.main(["--list"]) == 0
    assert "cifar10" in capsys.readouterr().out
    assert cli.main(["cifar10"]) == 0 and server.total == 1
    assert str(tmp_path / "cache" / "cifar-10-batches-py") in capsys.readouterr().out


def test_interrupted_zip_extraction_leaves_nothing(server, monkeypatch, tmp_path):
    import zipfile

    tiny = server.root / "tiny-imagenet-200.zip"
    make_tiny_imagenet(tiny)
    point(monkeypatch, DATASETS, "tiny_imagenet", server.url(tiny.name), known_hash=md5(tiny))
    real = zipfile.ZipFile.extract

    def extract(self, member, *args, **kwargs):
        if str(getattr(member, "filename", member)).endswith("val_1.JPEG"):
            raise OSError(28, "No space left on device")
        return real(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "extract", extract)
    with pytest.raises(OSError, match="No space left"):
        fetch("tiny_imagenet", progress=False)
    assert _leftovers(tmp_path / "cache") == [tiny.name]
    monkeypatch.setattr(zipfile.ZipFile, "extract", real)
    assert (fetch("tiny_imagenet", progress=False) / "wnids.txt").is_file()
    assert server.total == 1


def test_command_line_module_runs_without_warnings(tmp_path):
    env = {**os.environ, "CNNX_DATA": str(tmp_path / "cli"), "CNNX_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-m", "cnnexplore_nb.data", "--list"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert "l2tww_source" in out.stdout and str(tmp_path / "cli") in out.stdout


@pytest.mark.parametrize("url", ["http://192.0.2.1/x.tar.gz", "https://data.invalid/x.tar.gz"])
def test_any_address_but_localhost_fails_the_test_loudly(monkeypatch, url):
    """The guard blocks before a packet leaves; fetch does not swallow the failure."""
    monkeypatch.delenv("CNNX_OFFLINE")
    point(monkeypatch, DATASETS, "cifar100", url)
    with pytest.raises(RuntimeError, match="only 127.0.0.1 allowed"):
        fetch("cifar100", progress=False)

"""A counting HTTP server on 127.0.0.1, a network guard, and format-exact dataset fixtures.

The fixtures are made here in code, in the published layouts: a CIFAR-10 python tar.gz with
pickled batches, an STL-10 binary tar.gz (column-major images), a Tiny ImageNet zip of JPEG
folders, and a VessMAP folder with 8-bit TIFF images, TIFF labels named ``.png``, PNG region
masks and the four split lists as published (paths from the repository root).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
import zipfile
from collections import Counter
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
    """Serves ``self.root`` on 127.0.0.1 and counts GET requests per path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: Counter[str] = Counter()
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(outer.root), **kwargs)

            def do_GET(self):  # noqa: N802 - http.server API
                outer.requests[self.path.lstrip("/")] += 1
                super().do_GET()

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

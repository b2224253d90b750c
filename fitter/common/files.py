"""Atomic output: every file and every per-face folder appears complete or not at all.

A face's outputs are written into a staging folder next to the destination and renamed into place at the
end, so an interrupted run never leaves a half-written folder that a resumed run would mistake for done.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np


def _tmp_sibling(path: Path) -> Path:
    """A new empty file beside ``path`` with the same suffix (writers that pick a format from the extension,
    such as cv2.VideoWriter and USD, see the right one), unique per writer."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` when the block succeeds and is
    removed in any case (no temporary file is left behind after an error), so ``path`` appears complete or
    not at all. For writers that need a file name rather than bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)  # unique per writer: concurrent writers of one path never share it
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (readers see the old file or the complete new one)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: dict) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an RGB (H, W, 3) or grey image; uint8 or uint16 kept as is."""
    import cv2

    data = image[..., ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    ok, buf = cv2.imencode(Path(path).suffix, np.ascontiguousarray(data))
    if not ok:
        raise OSError(f"could not encode {path}")
    return write_bytes(path, buf.tobytes())


@contextmanager
def staged_folder(destination: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a staging folder; on success it replaces ``destination`` in one rename, on error it vanishes."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    try:
        yield staging
        if destination.exists():
            if not overwrite:
                raise FileExistsError(f"{destination} exists; pass --overwrite to replace it")
            trash = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            destination.replace(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging.replace(destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

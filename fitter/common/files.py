"""Atomic output: every file and every per-face folder appears complete or not at all.

A face's outputs are written into a staging folder next to the destination and renamed into place at the
end, so an interrupted run never leaves a half-written folder that a resumed run would mistake for done.
Every temporary (``.<name>.<pid>.<random>.partial<suffix>`` files, ``.<name>.<pid>.<random>.partial`` staging folders,
``.<name>.old-<pid>`` replaced folders) carries the id of the process that made it, so a later run can tell
the leftovers of a killed run from the work of a live one (:func:`remove_stale_leftovers`).

JSON is written strictly (no ``NaN``/``Infinity`` tokens, which most JSON readers reject): a non-finite number
becomes ``null`` and its place is listed under ``"non_finite_values"``.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

NON_FINITE_KEY = "non_finite_values"  # where write_json lists the values it turned into null
# A leftover older than this is never in use, whatever its pid says (pids are reused): one face's export
# takes seconds, a vfx export a few minutes, so a day is far beyond any live staging folder.
STALE_AFTER_S = 24 * 3600
_LEFTOVER = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.[^.]+\.(?:partial|tmp)(?:\.[^.]+)?|old-(?P<old_pid>\d+))$")
_LEGACY = re.compile(r"^\..+\.[^.]+\.(?:partial|tmp)$")  # facefit < 0.x staging names, without a pid


class OutputFolderError(OSError):
    """The output folder cannot take the batch's files. ``str(err)`` is one line: which folder, what, what to do."""


def _tmp_sibling(path: Path) -> Path:
    """A new empty file beside ``path``, unique per writer, named after the writing process (so a later run can
    tell a killed run's leftovers) and ending in ``path``'s own suffix (writers that pick a format from the
    extension, such as cv2.VideoWriter and USD, see the right one)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=f".partial{path.suffix}",
                               dir=path.parent)
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


def json_text(data) -> str:
    """Strict, indented JSON of ``data`` (numpy values and paths converted; non-finite numbers -> null, listed
    under ``"non_finite_values"`` when ``data`` is a dict)."""
    bad: dict[str, str] = {}
    plain = _plain(data, "", bad)
    if bad and isinstance(plain, dict):
        plain[NON_FINITE_KEY] = {**(plain.get(NON_FINITE_KEY) or {}), **bad}
    return json.dumps(plain, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, data) -> Path:
    return write_text(path, json_text(data))


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
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.{os.getpid()}.", suffix=".partial",
                                    dir=destination.parent))
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


# -- leftovers of killed runs --------------------------------------------------------------------------
def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_leftovers(folder: Path, now: float | None = None,
                    belongs: Callable[[str], bool] | None = None) -> list[Path]:
    """Temporaries in ``folder`` (not below it) that no live writer owns.

    A leftover is stale when the process named in it is gone, or when it is older than ``STALE_AFTER_S``
    (its pid may have been reused by an unrelated process). Names without a pid (older facefit versions) go
    by age alone. ``belongs`` (the name of the file or folder a leftover was for -> bool) narrows the search
    to one run's own outputs: runs on other machines share the folder, and their process ids mean nothing here.
    """
    folder = Path(folder)
    now = time.time() if now is None else now
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _LEFTOVER.match(entry.name)
        if not m and not _LEGACY.match(entry.name):
            continue
        if belongs is not None and not (m and belongs(m.group("name"))):
            continue
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        if m:
            stale = age > STALE_AFTER_S or not process_alive(int(m.group("pid") or m.group("old_pid")))
        else:
            stale = age > STALE_AFTER_S  # a name without a pid: only its age says it is abandoned
        if stale:
            found.append(entry)
    return sorted(found)


def remove_stale_leftovers(folder: Path, belongs: Callable[[str], bool] | None = None) -> list[Path]:
    """Delete :func:`stale_leftovers` of ``folder`` (those ``belongs`` accepts); returns what was removed."""
    removed = []
    for entry in stale_leftovers(folder, belongs=belongs):
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass  # someone else removed it, or it is not ours to remove: never a reason to stop a batch
    return removed


# -- the output folder ---------------------------------------------------------------------------------
def check_output_folder(folder: Path, need_bytes: int = 0, need_text: str = "") -> Path:
    """Make sure ``folder`` exists (creating it), is writable and has ``need_bytes`` free.

    Raises :class:`OutputFolderError` with one line (``need_text`` explains the estimate). Run before any
    work so that a batch never learns at its end that it cannot save anything.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"output folder {folder} is a file, not a folder; pass a folder path to -o")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"output folder {folder} cannot be created ({_why(exc)}); "
                                f"choose a folder you can write to with -o") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=f".write-test.{os.getpid()}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputFolderError(f"output folder {folder} is not writable ({_why(exc)}); "
                                f"fix its permissions or choose another folder with -o") from exc
    if need_bytes > 0:
        free = shutil.disk_usage(folder).free
        if free < need_bytes:
            raise OutputFolderError(
                f"output folder {folder} has {_mb(free)} free but the batch needs about {_mb(need_bytes)}"
                f"{f' ({need_text})' if need_text else ''}; free some space or choose another folder with -o")
    return folder


def _why(exc: OSError) -> str:
    reasons = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the device",
               errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EEXIST: "a file is in the way"}
    where = f" at {exc.filename}" if getattr(exc, "filename", None) else ""
    return reasons.get(exc.errno, exc.strerror or str(exc)) + where


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


# -- strict JSON ---------------------------------------------------------------------------------------
def _plain(value, where: str, bad: dict[str, str]):
    """JSON-ready copy of ``value``; non-finite floats become None and are recorded in ``bad`` by place."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}" if where else str(k), bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]", bad) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where, bad)
    if isinstance(value, np.generic):
        return _plain(value.item(), where, bad)
    if isinstance(value, float) and not math.isfinite(value):
        bad[where or "(value)"] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


CACHE_ENV = "FACEFIT_CACHE"  # the root of facefit's caches (detections, masks, the critic's photo pool)


def cache_folder(name: str) -> Path:
    """``$FACEFIT_CACHE/<name>``, else ``~/.cache/facefit/<name>`` (never inside the repository)."""
    env = os.environ.get(CACHE_ENV)
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "facefit") / name

"""A clip's decoded frames kept on disk instead of in memory.

A subject's phases need its frames again after they were observed (photos and part masks for the keyframes, every
frame for overlay.mp4), and decoding a clip again for each frame asked for would cost its length each time. Kept in
memory, one second of 1080p at 25 fps is 155 MB and of 4K 620 MB: a minute of phone video does not fit in a
laptop's memory. Here each frame's bytes are appended to one raw file while the clip is read, and the file is
memory-mapped once complete: the frames stay exact (no codec), the operating system keeps in memory what is used
and evicts the rest, and the file is removed when the store is closed.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np

from .errors import ImageError
from .images import LoadedImage
from .video import VideoInfo

PREFIX = ".facefit-frames-"  # the scratch folder's name in the output folder: PREFIX<host>-<pid>-<random>
_NO_PIXELS = np.zeros((0, 0, 3), np.uint8)


class FrameStore:
    """Frames appended in order, read back by index as LoadedImage (read-only views of the memory-mapped file:
    a frame changed in place would be changed for every later reader, so writing raises). Use as a context
    manager, or call :meth:`close`."""

    def __init__(self, folder: str | Path | None = None) -> None:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            remove_abandoned(Path(folder))
        self.folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{_host()}-{os.getpid()}-", dir=folder))
        self._path = self.folder / "frames.rgb"
        self._file = open(self._path, "wb")
        self._frames: list[tuple[LoadedImage, int, tuple[int, ...]]] = []  # (image without pixels, offset, shape)
        self._size = 0
        self._map: np.memmap | None = None

    def append(self, image: LoadedImage) -> None:
        """Store one frame's pixels (8-bit RGB; the frame's other fields are kept as they are)."""
        if self._file is None:
            raise ValueError("frames cannot be added to a store that was read from or closed")
        pixels = np.ascontiguousarray(image.rgb, dtype=np.uint8)
        self._file.write(memoryview(pixels).cast("B"))  # no copy of the frame
        self._frames.append((dataclasses.replace(image, rgb=_NO_PIXELS, _high=None), self._size, pixels.shape))
        self._size += pixels.nbytes

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, k: int) -> LoadedImage:
        if self._map is None:
            if self._file is None:
                raise ValueError("the frame store is closed")
            self._file.close()
            self._file = None
            self._map = np.memmap(self._path, dtype=np.uint8, mode="r", shape=(max(self._size, 1),))
        image, offset, shape = self._frames[k]
        return dataclasses.replace(image, rgb=self._map[offset:offset + int(np.prod(shape))].reshape(shape))

    @property
    def nbytes(self) -> int:
        return self._size

    def close(self) -> None:
        """Remove the file (views handed out stay readable until dropped, where the system allows it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._map = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "FrameStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def frames_read(info: VideoInfo, every: int = 1, start: float = 0.0, end: float | None = None) -> int:
    """About how many frames a clip read with ``every``/``start``/``end`` (seconds) gives (0: not known)."""
    if info.frame_count <= 0:
        return 0
    fps = info.fps if info.fps > 0 else 30.0
    last = min(info.frame_count, int(np.ceil(end * fps)) + 1) if end is not None else info.frame_count
    return max(0, -(-(last - int(start * fps)) // max(int(every), 1)))


def require_space(path: str | Path, infos: list[VideoInfo], folder: str | Path, every: int = 1, start: float = 0.0,
                  end: float | None = None) -> int:
    """The bytes the clips' frames will take in a store in ``folder``; raises ImageError naming ``path`` when
    the folder's disk has not that much free (with a tenth to spare)."""
    need = sum(frames_read(i, every, start, end) * i.width * i.height * 3 for i in infos)
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need * 1.1 > free:
        count = sum(frames_read(i, every, start, end) for i in infos)
        raise ImageError(path, f"its {count} frames need about {need / 1e9:.1f} GB of disk while they are fitted "
                         f"(kept as raw pixels beside the outputs), but {probe} has {free / 1e9:.1f} GB free",
                         "fit part of it with --start/--end or --every N, or free space there")
    return need


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_abandoned(folder: Path) -> list[Path]:
    """Remove the scratch folders in ``folder`` that a process of this machine left when it was killed (its pid
    no longer runs); those of other machines (shared output folders) and of live processes stay."""
    removed = []
    host = _host()
    for old in folder.glob(f"{PREFIX}{host}-*"):
        pid = old.name[len(PREFIX) + len(host) + 1:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    return removed

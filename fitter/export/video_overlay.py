"""Writing frames (uint8 RGB) as a video file, e.g. ``overlay.mp4``: the fit drawn over each video frame.

OpenCV's VideoWriter with the ``mp4v`` codec (MPEG-4 Part 2), which the opencv-python wheels can always
encode; H.264 (``avc1``) is not in those wheels. Frames are written as they come (a long clip is never held
in memory) into a temporary file renamed into place at the end, so the video appears complete or not at all.
MPEG-4 needs even sizes and the encoder would silently crop an odd row or column: odd frames get one edge row
or column replicated at the bottom / right instead, so every pixel keeps its coordinates.
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Iterable

import numpy as np

from ..common.files import atomic_path

DEFAULT_FOURCC = "mp4v"


class VideoOutput:
    """``with VideoOutput(path, fps) as out: out.write(rgb)`` — an atomically written video file.

    The size is fixed by the first frame; every frame must be (H, W, 3) uint8 RGB or (H, W) uint8 grey.
    """

    def __init__(self, path: str | Path, fps: float, fourcc: str = DEFAULT_FOURCC) -> None:
        if not fps > 0:
            raise ValueError(f"{path}: fps must be > 0, got {fps}")
        if len(fourcc) != 4:
            raise ValueError(f"{path}: a codec is a four-character code such as 'mp4v', got {fourcc!r}")
        self.path = Path(path)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (h, w) of the input frames
        self._writer = None
        self._stack = ExitStack()
        self._tmp: Path | None = None

    def __enter__(self) -> "VideoOutput":
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
            raise ValueError(f"{self.path}: frames must be uint8 (H, W, 3) RGB or (H, W) grey, got "
                             f"{frame.dtype} {frame.shape}")
        if self.size is None:
            self._open(frame.shape[:2])
        elif frame.shape[:2] != self.size:
            raise ValueError(f"{self.path}: frame {self.frames} is {frame.shape[:2]}, the video is {self.size} "
                             "(every frame must have the first frame's size)")
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        h, w = self.size
        pad = ((0, h % 2), (0, w % 2), (0, 0))
        bgr = np.ascontiguousarray(np.pad(frame, pad, mode="edge")[:, :, ::-1])
        self._writer.write(bgr)
        self.frames += 1

    def _open(self, size: tuple[int, int]) -> None:
        import cv2

        h, w = size
        self.size = (int(h), int(w))
        even = (w + w % 2, h + h % 2)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, even)
        if not self._writer.isOpened():
            raise OSError(f"{self.path}: OpenCV cannot encode {self.fourcc!r} into a {self.path.suffix} file "
                          f"(use fourcc 'mp4v' with .mp4, or 'MJPG' with .avi)")

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.release()
        if exc_type is None and self.frames == 0:
            exc = ValueError(f"{self.path}: no frames to write")
            self._stack.__exit__(type(exc), exc, None)  # removes the temporary
            raise exc
        self._stack.__exit__(exc_type, exc, tb)  # renames the temporary into place, or removes it on error


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, fourcc: str = DEFAULT_FOURCC) -> dict:
    """Write every frame of ``frames`` (any iterable, consumed lazily) to ``path``; returns a summary."""
    with VideoOutput(path, fps, fourcc) as out:
        for frame in frames:
            out.write(frame)
    h, w = out.size
    return {"file": Path(path).name, "frames": out.frames, "fps": out.fps, "codec": fourcc, "size": [h, w]}

"""Reading video frames (OpenCV) as LoadedImage objects, so each frame can be observed like a photo."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import ImageError
from .images import LoadedImage


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float  # 0.0 when the container does not say
    frame_count: int  # as reported by the container (may be approximate for some codecs)
    width: int
    height: int


def _open(path: Path):
    import cv2

    if not path.exists():
        raise ImageError(path, "video file does not exist", "check the path")
    if path.is_dir():
        raise ImageError(path, "is a folder, not a video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ImageError(path, "cannot be opened as a video",
                         "the file is corrupt or its codec is not supported by OpenCV's FFmpeg; "
                         "convert it with e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`")
    return cap


def video_info(path: str | Path) -> VideoInfo:
    """Frame rate, frame count and size of a video, without decoding its frames."""
    import cv2

    path = Path(path)
    cap = _open(path)
    try:
        return VideoInfo(
            path=path,
            fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        cap.release()


def read_video_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> Iterator[LoadedImage]:
    """Yield every ``every``-th frame (0, every, 2*every, ...) as an RGB :class:`LoadedImage`.

    The file is opened (and its first frame decoded) before this returns, so a missing or undecodable
    video raises :class:`ImageError` at the call, not on iteration. Each frame's ``frame_index`` is its
    index in the video, ``source`` is ``"<path>#frame=<index>"`` and ``content_hash`` hashes its pixels.
    ``max_frames`` bounds how many frames are yielded. Frames are decoded lazily: ``list(...)`` them to
    hold them all.
    """
    import cv2

    path = Path(path)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0 or None, got {max_frames}")
    cap = _open(path)
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise ImageError(path, "has no decodable video frames", "the file is empty, truncated or corrupt")

    def frames() -> Iterator[LoadedImage]:
        try:
            index, yielded, frame = 0, 0, first
            while frame is not None:
                if max_frames is not None and yielded >= max_frames:
                    return
                if index % every == 0:
                    rgb = np.ascontiguousarray(frame[:, :, ::-1]) if frame.ndim == 3 else frame
                    yield LoadedImage.from_array(rgb, path, frame_index=index)
                    yielded += 1
                # skip frames we do not need without decoding them
                index += 1
                while index % every != 0:
                    if not cap.grab():
                        return
                    index += 1
                ok, frame = cap.read()
                if not ok:
                    return
        finally:
            cap.release()

    return frames()

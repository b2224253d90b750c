"""Reading video clips (anything OpenCV's FFmpeg reads) as a stream of frames with their index and time.

A :class:`VideoClip` is a cheap, re-iterable handle: opening it checks the file (one clear
:class:`ImageError` line when it cannot be used) and fixes which frames are selected; iterating it decodes
one frame at a time, so a long clip is never held in memory (``chunks(n)`` gives batches of n frames).

Selection (the CLI's ``facefit fit clip.mp4 --every N --start S --end E``):
- ``start`` and ``end`` are **seconds** from the beginning of the clip (not frame numbers), so the same
  numbers select the same moment at any frame rate. The selection is the half-open interval
  ``start <= time < end``: ``start=1, end=2`` at 25 fps is frames 25..49.
- ``every`` keeps every N-th of those frames, counted from the first selected one.
- A frame's time is its presentation timestamp in the container, from the first frame's (phones record at a
  variable frame rate: in low light an iPhone clip drops to 24 fps or less, and timing its frames by
  ``index / fps`` put the fitted animation and the temporal terms out of step with the clip and its sound).
  A file without usable timestamps (none, or not increasing) is timed ``index / fps``, with ``fps`` the
  container's frame rate; when the container gives none (0 or missing), :data:`FALLBACK_FPS` is assumed with a
  warning. Passing ``fps=`` (``--fps``) overrides the file's timing: frames are then timed ``index / fps``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import ImageError
from .images import LoadedImage, sniff_kind

# Assumed frame rate when the container does not state one: the most common rate of phone and webcam video.
# Only frame times depend on it (and which frames --start/--end select); the user can override it.
FALLBACK_FPS = 30.0
# A time this close below a frame's own time still selects it (guards 0.1 * 30 = 2.9999999999999996).
_TIME_EPS_FRAMES = 1e-6
# A timestamp this close to index / fps (in frames) is the nominal time: a constant-rate clip is timed exactly
# index / fps (timestamps are rounded by the container's time base), a variable-rate one by its timestamps.
_NOMINAL_FRAMES = 0.05
_CONVERT_HINT = ("the file is corrupt or its codec is not supported by OpenCV's FFmpeg; "
                 "convert it with e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`")


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float  # the container's frame rate; 0.0 when it does not say
    frame_count: int  # as reported by the container (may be approximate for some codecs; 0 when unknown)
    width: int
    height: int

    @property
    def duration(self) -> float | None:
        """Seconds, from the container's frame count and rate (None when either is unknown)."""
        return self.frame_count / self.fps if self.fps > 0 and self.frame_count > 0 else None


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: RGB pixels (``image.rgb``, ``image.frame_index == index``), its index in the
    video (0-based) and its time in seconds (``index / fps``)."""

    image: LoadedImage
    index: int
    time: float

    @property
    def rgb(self) -> np.ndarray:
        return self.image.rgb


def _open(path: Path):
    import cv2

    if not path.exists():
        raise ImageError(path, "video file does not exist", "check the path")
    if path.is_dir():
        raise ImageError(path, "is a folder, not a video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise _unopened(path)
    return cap


def _unopened(path: Path) -> ImageError:
    """One line for a file OpenCV cannot open as a video: empty, not a video at all, or a codec it lacks."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        return ImageError(path, f"cannot be read ({exc.strerror or exc})", "check the file's permissions")
    if not head:
        return ImageError(path, "is empty (0 bytes)", "re-export or re-copy the video")
    kind, readable = sniff_kind(head)  # (a still image under a video's name opens: one frame)
    if kind is not None and not readable and "video" not in kind:
        return ImageError(path, f"holds {kind} data, not a video (its name says {path.suffix.lower() or 'no type'})",
                          "remove it from the inputs or replace it with the video it should be")
    return ImageError(path, "cannot be opened as a video", _CONVERT_HINT)


def _container_fps(cap) -> float:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if math.isfinite(fps) and fps > 0 else 0.0


def video_info(path: str | Path) -> VideoInfo:
    """Frame rate, frame count and size of a video, without decoding its frames."""
    import cv2

    path = Path(path)
    cap = _open(path)
    try:
        return VideoInfo(
            path=path,
            fps=_container_fps(cap),
            frame_count=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        cap.release()


# Frame rates of real cameras (1-240 fps; beyond are slow-motion captures with their own timing): a container
# stating another rate is more likely mis-stamped, and the temporal terms are per second.
PLAUSIBLE_FPS = (1.0, 240.0)


def resolve_fps(container_fps: float, override: float | None = None) -> tuple[float, str | None]:
    """The frame rate to time frames with, and a warning when it had to be assumed."""
    if override is not None:
        if not (math.isfinite(override) and override > 0):
            raise ValueError(f"fps must be a positive number, got {override}")
        return float(override), None
    if container_fps > 0:
        unusual = not (PLAUSIBLE_FPS[0] <= container_fps <= PLAUSIBLE_FPS[1])
        return float(container_fps), (f"the video states {container_fps:g} fps, an unusual rate; if it is wrong, "
                                      f"pass --fps (frame times, --start/--end and the temporal smoothing, which is "
                                      f"per second, depend on it)" if unusual else None)
    return FALLBACK_FPS, (f"the video does not state its frame rate; assuming {FALLBACK_FPS:g} fps for the "
                          f"exported animation and for frame times where its frames carry no timestamps (pass "
                          f"fps=... / --fps to set it)")


def first_frame_at(seconds: float, fps: float) -> int:
    """Index of the first frame whose time ``index / fps`` is at or after ``seconds``."""
    return max(0, math.ceil(seconds * fps - _TIME_EPS_FRAMES))


@dataclass
class VideoClip:
    """A selection of a video's frames (see the module docstring); iterate it for :class:`VideoFrame` s.

    Build it with :func:`open_video`. Each iteration re-opens the file and decodes from the start, so the
    clip can be streamed more than once (e.g. one pass to observe, one to fit) without keeping frames.
    """

    info: VideoInfo
    fps: float  # the rate frame times are computed with (the container's, the override, or FALLBACK_FPS)
    every: int = 1
    start: float = 0.0  # seconds
    end: float | None = None  # seconds, exclusive; None: to the end of the video
    max_frames: int | None = None
    warnings: list[str] = field(default_factory=list)
    stamped: bool = True  # frames are timed by the file's timestamps where usable (False: index / fps)

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def first_index(self) -> int:
        return first_frame_at(self.start, self.fps)

    @property
    def stop_index(self) -> int | None:
        """One past the last frame index that may be selected (None: decode to the end of the file)."""
        return None if self.end is None else first_frame_at(self.end, self.fps)

    def expected_indices(self) -> list[int]:
        """The frame indices the clip will yield, from the container's frame count (which some codecs only
        estimate: iteration is the truth, and stops early at the file's real end)."""
        stop = self.info.frame_count if self.stop_index is None else min(self.stop_index, self.info.frame_count)
        indices = list(range(self.first_index, stop, self.every))
        return indices if self.max_frames is None else indices[: self.max_frames]

    def __iter__(self) -> Iterator[VideoFrame]:
        cap = _open(self.path)
        try:
            yield from self._decode(cap)
        finally:
            cap.release()

    def _decode(self, cap) -> Iterator[VideoFrame]:
        eps = _TIME_EPS_FRAMES / self.fps
        timing = _FrameTimes(cap, self.fps, self.stamped)
        index, selected, yielded, past_end = -1, 0, 0, False
        while self.max_frames is None or yielded < self.max_frames:
            if not cap.grab():  # grab() decodes without the colour conversion, so skipped frames stay cheap
                break
            index += 1
            time = timing.next(index)
            if time < self.start - eps:
                continue
            if self.end is not None and time >= self.end - eps:
                past_end = True
                break
            selected += 1
            if (selected - 1) % self.every:
                continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                if yielded == 0:
                    raise ImageError(self.path, f"has no decodable frames at or after --start {self.start:g} s",
                                     _CONVERT_HINT)
                break
            rgb = np.ascontiguousarray(frame[:, :, ::-1]) if frame.ndim == 3 else frame
            yield VideoFrame(LoadedImage.from_array(rgb, self.path, frame_index=index), index, time)
            yielded += 1
        if selected == 0 and self.max_frames != 0:
            self._nothing_selected(index, timing.last, past_end)
        rates = timing.rates
        if rates and not any(w.startswith(_VARIABLE_RATE) for w in self.warnings):
            self.warnings.append(f"{_VARIABLE_RATE} ({rates[0]:.3g}-{rates[1]:.3g} fps; the file states "
                                 f"{self.fps:g}): frames are timed by their timestamps (pass --fps to time them "
                                 f"index / fps instead)")

    def _nothing_selected(self, index: int, last: float, past_end: bool) -> None:
        if past_end:
            raise ImageError(self.path, f"--start {self.start:g} s to --end {self.end:g} s holds no frame (one every "
                                        f"{1 / self.fps:.3g} s at {self.fps:g} fps)",
                             "widen the window between --start and --end")
        if index < 0:
            raise ImageError(self.path, "has no decodable frames", _CONVERT_HINT)
        raise ImageError(self.path, f"--start {self.start:g} s is at or past the end of the video ({index + 1} "
                                    f"frames, {max(last, 0.0):.3f} s)", "choose an earlier start")

    def chunks(self, size: int) -> Iterator[list[VideoFrame]]:
        """Consecutive selected frames in lists of ``size`` (the last may be shorter): batches for a
        frames-x-... computation with at most ``size`` decoded frames in memory."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        batch: list[VideoFrame] = []
        for frame in self:
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


_VARIABLE_RATE = "the clip's frame rate varies"


class _FrameTimes:
    """Each grabbed frame's time (s): its timestamp from the first frame's, snapped to ``index / fps`` when within
    a twentieth of a frame of it; ``index / fps`` for a file without timestamps; and from a timestamp that is
    missing, repeated or out of order on, the time of the frame before plus ``1 / fps`` a frame."""

    def __init__(self, cap, fps: float, stamped: bool) -> None:
        self.cap, self.fps, self.stamped = cap, fps, stamped
        self.first: float | None = None
        self.shift = 0.0  # added to index / fps once the timestamps are given up
        self.last = -math.inf
        self.intervals: list[float] = []

    def next(self, index: int) -> float:
        nominal = index / self.fps
        time = None
        if self.stamped:
            stamp = self._stamp()
            if stamp is not None and self.first is None:
                self.first = stamp
            if stamp is not None:
                time = stamp - self.first
                time = nominal if abs(time - nominal) <= _NOMINAL_FRAMES / self.fps else time
            if time is None or time <= self.last:  # the file's timing cannot be trusted from here on
                self.stamped, time = False, None
                self.shift = (self.last + 1.0 / self.fps - nominal) if index > 0 else 0.0
        if time is None:
            time = nominal + self.shift
        if index > 0:
            self.intervals.append(time - self.last)
        self.last = time
        return time

    @property
    def rates(self) -> tuple[float, float] | None:
        """(slowest, fastest) frame rate between consecutive frames when they differ by more than 10 %."""
        if len(self.intervals) < 2:
            return None
        shortest, longest = min(self.intervals), max(self.intervals)
        return (1.0 / longest, 1.0 / shortest) if longest > 1.1 * shortest else None

    def _stamp(self) -> float | None:
        import cv2

        ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        return ms / 1000.0 if ms is not None and math.isfinite(ms) and ms >= 0 else None


def open_video(path: str | Path, every: int = 1, start: float = 0.0, end: float | None = None,
               fps: float | None = None, max_frames: int | None = None) -> VideoClip:
    """Open a video and select its frames: ``start <= time < end`` (seconds), every ``every``-th.

    Raises :class:`ImageError` (one line: file, problem, what to do) when the file is missing, not a video,
    undecodable, or when ``start`` lies past its end; ``ValueError`` for invalid numbers. The first selected
    frame is decoded here, so an unusable file fails at the call, not half-way through a fit.
    """
    path = Path(path)
    if every != int(every) or every < 1:
        raise ValueError(f"every must be an integer >= 1, got {every!r}")
    every = int(every)
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"start must be a time in seconds >= 0, got {start}")
    if end is not None and not (math.isfinite(end) and end > start):
        raise ValueError(f"end must be a time in seconds after start ({start:g} s), got {end}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0 or None, got {max_frames}")
    info = video_info(path)
    rate, warning = resolve_fps(info.fps, fps)
    stamped = fps is None  # a rate given overrides the file's timing
    clip = VideoClip(info, rate, every, float(start), None if end is None else float(end), max_frames,
                     stamped=stamped)
    if warning:
        clip.warnings.append(warning)
        warnings.warn(f"{path}: {warning}", stacklevel=2)
    stop = info.frame_count if clip.stop_index is None else min(clip.stop_index, info.frame_count)
    window = stop - clip.first_index  # frames between --start and --end (max_frames aside)
    if every >= window > 1:
        clip.warnings.append(f"--every {every} is at least the selected part of the clip ({window} frames): only "
                             "its first frame is fitted")
    if clip.stop_index is not None and clip.stop_index <= clip.first_index:
        raise ImageError(path, f"--start {start:g} s to --end {end:g} s holds no frame (one every "
                               f"{1 / rate:.3g} s at {rate:g} fps)", "widen the window between --start and --end")
    probe = iter(VideoClip(info, rate, 1, float(start), None, 1, stamped=stamped))
    try:
        next(probe)  # decodes the first selected frame: an unusable file (or a start past its end) fails now
    finally:
        probe.close()
    return clip


def read_video_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> Iterator[LoadedImage]:
    """Every ``every``-th frame (0, every, 2*every, ...) as an RGB :class:`LoadedImage`, decoded lazily.

    The file is opened (and its first frame decoded) before this returns, so a missing or undecodable video
    raises :class:`ImageError` at the call. Each frame's ``frame_index`` is its index in the video, ``source``
    is ``"<path>#frame=<index>"``. Use :func:`open_video` for times and a start/end selection.
    """
    clip = open_video(path, every=every, max_frames=max_frames)
    return (frame.image for frame in clip)

"""Evidence: what the images say about one subject, frame by frame, for the energy terms to compare against.

A subject is seen in F frames (a single photo is one frame; a video is one frame per time instant and view).
Each frame carries one detected face (landmarks, blendshape scores, head transform), and optionally the photo
(for the photometric and detail terms) and part masks (for PRDL). Terms take what they need from here; a
frame without a detection keeps its slot with ``detected = False`` (zero landmark weights). Frames of a
multi-view capture name their view and their time instant (the images of one instant share expression and
head pose); without ``instant`` every frame is its own instant.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .crop import FitCrop
from .observe.segmentation import PartMasks
from .observe.types import FaceObservation


def undetected_face(like: FaceObservation) -> FaceObservation:
    """The slot of a frame without a detection: finite zero landmarks of the subject's format (``like``'s), weight
    0, so every per-frame tensor keeps its shape and the frame adds nothing to the landmark terms."""
    n = len(like.landmarks)
    return FaceObservation(np.zeros((n, 2), np.float32), like.landmark_format, np.zeros(4, np.float32), 0.0,
                           np.zeros(n, np.float32), detector=like.detector)


@dataclass
class FrameEvidence:
    face: FaceObservation
    image_size: tuple[int, int]  # (H, W) of the frame's image
    photo: np.ndarray | None = None  # (H, W, 3) float32 sRGB in [0, 1]
    masks: PartMasks | None = None
    exif_focal_35mm: float | None = None
    view: int = 0  # camera index (multi-view rigs)
    time_s: float | None = None  # capture time (video)
    detected: bool = True
    instant: int | None = None  # time instant (multi-view: the images of one instant share it); None: own
    frame_index: int | None = None  # the frame's index in its source video (None for photos)
    segment: int = 0  # frames of different segments (split by a cut or a long gap) are not linked in time
    sharpness: float | None = None  # how sharp the face is (higher: sharper), for choosing keyframes
    colour_change: float | None = None  # a clip's frame: colour distance to the frame before (fitter.io.shots)

    def __post_init__(self) -> None:
        """A frame a fit can trust: one line naming what is wrong, before any stage runs on it."""
        size = self.image_size
        if not (isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, (int, np.integer)) and v > 0
                                                                    for v in size)):
            raise ValueError(f"image_size must be (height, width) in pixels, two positive integers; got {size!r}")
        if not isinstance(self.face, FaceObservation):
            raise ValueError(f"face must be a FaceObservation; got {type(self.face).__name__}")
        problem = self.face.problem() if self.detected else None
        if problem:
            raise ValueError(f"face: {problem}")
        if self.photo is not None:
            photo = self.photo
            if not isinstance(photo, np.ndarray) or photo.shape != (*size, 3):
                raise ValueError(f"photo must be an (H, W, 3) array of the image's size {size}; got "
                                 f"{getattr(photo, 'shape', type(photo).__name__)} (pass LoadedImage.rgb_float)")
            if not np.issubdtype(photo.dtype, np.floating) or not (0.0 <= float(photo.min())
                                                                   and float(photo.max()) <= 1.0 + 1e-6):
                raise ValueError(f"photo must be float sRGB in [0, 1] (LoadedImage.rgb_float); got {photo.dtype} "
                                 f"in [{photo.min()}, {photo.max()}]")

    def crop(self, size: int, margin: float) -> FitCrop:
        """The fitting crop around this frame's confidently detected landmarks."""
        face = self.face
        return FitCrop.around(face.landmarks[face.landmark_weights > 0], int(size), float(margin))


@dataclass
class Evidence:
    frames: list[FrameEvidence] = field(default_factory=list)

    @classmethod
    def single(cls, face: FaceObservation, image_size: tuple[int, int], photo: np.ndarray | None = None,
               masks: PartMasks | None = None, exif_focal_35mm: float | None = None) -> "Evidence":
        """One photo: one frame seen by one view."""
        size = tuple(int(v) for v in image_size) if isinstance(image_size, (tuple, list)) else image_size
        return cls([FrameEvidence(face, size, photo, masks, exif_focal_35mm)])

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def landmark_format(self) -> str:
        formats = {f.face.landmark_format for f in self.frames}
        if len(formats) != 1:
            raise ValueError(f"frames of one subject mix landmark formats {sorted(formats)}")
        return formats.pop()

    def landmarks(self) -> tuple[np.ndarray, np.ndarray]:
        """Observed landmarks (F, N, 2) pixels and their weights (F, N) (0 for frames without a detection)."""
        points = np.stack([f.face.landmarks for f in self.frames]).astype(np.float32)
        weights = np.stack([f.face.landmark_weights * float(f.detected) for f in self.frames]).astype(np.float32)
        return points, weights

    def face_sizes(self) -> np.ndarray:
        """Per-frame face size (F,) in pixels: sqrt of the area of the confident landmarks' bounding box."""
        points, weights = self.landmarks()
        sizes = []
        for p, w in zip(points, weights):
            seen = p[w > 0] if (w > 0).any() else p
            span = np.maximum(seen.max(0) - seen.min(0), 1.0)
            sizes.append(float(np.sqrt(span[0] * span[1])))
        return np.asarray(sizes, np.float32)

    def instants(self) -> np.ndarray | None:
        """Instant of each frame (F,) int64, numbered 0..T-1 in order of first appearance; None when every frame
        is its own instant (no frame names one)."""
        if all(f.instant is None for f in self.frames):
            return None
        keys = [f.instant if f.instant is not None else ("own", k) for k, f in enumerate(self.frames)]
        order = {key: n for n, key in enumerate(dict.fromkeys(keys))}
        return np.array([order[key] for key in keys], np.int64)

    def views(self) -> np.ndarray:
        """View of each frame (F,) int64."""
        return np.array([f.view for f in self.frames], np.int64)

    def subset(self, frames: list[int]) -> "Evidence":
        """The evidence of some frames (same objects, in the order given)."""
        return Evidence([self.frames[k] for k in frames])

    def has(self, what: str) -> bool:
        """Whether every frame carries ``what`` (``photo`` or ``masks``)."""
        return bool(self.frames) and all(getattr(f, what) is not None for f in self.frames)

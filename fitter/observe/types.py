"""What the detectors hand to the fitter: per-face observations of one image, cacheable as plain arrays."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.files import write_npz

LANDMARK_FORMATS = ("mediapipe478", "ibug68")
LANDMARK_COUNTS = {"mediapipe478": 478, "ibug68": 68}
MIN_FACE_SPAN_PX = 2.0  # confident landmarks spanning less than this in x or y are no face a fit can use


@dataclass
class FaceObservation:
    """One detected face, in pixel coordinates of the full-resolution, EXIF-oriented image."""

    landmarks: np.ndarray  # (N, 2) float32 pixels (origin at the top-left pixel's corner)
    landmark_format: str  # one of LANDMARK_FORMATS
    bbox: np.ndarray  # (4,) float32 x0, y0, x1, y1 in pixels
    score: float = 1.0  # detection confidence
    landmark_weights: np.ndarray | None = None  # (N,) float32 in [0, 1]; None means all 1
    landmarks_z: np.ndarray | None = None  # (N,) MediaPipe's relative depth, in pixels (x scale)
    blendshapes: dict[str, float] | None = None  # MediaPipe's 52 ARKit-style scores by name
    transform: np.ndarray | None = None  # (4, 4) MediaPipe facial transformation matrix (cm)
    detector: str = ""
    # (4,) x0, y0, x1, y1: the full-resolution region the landmarker saw (the whole image, or the crop a
    # small face was re-observed on). `transform` and MediaPipe's perspective refer to that view.
    roi: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.landmark_format in LANDMARK_FORMATS, self.landmark_format
        self.landmarks = np.asarray(self.landmarks, np.float32)
        self.bbox = np.asarray(self.bbox, np.float32)
        if self.roi is not None:
            self.roi = np.asarray(self.roi, np.float32)
        if self.landmark_weights is None:
            self.landmark_weights = np.ones(len(self.landmarks), np.float32)

    @property
    def inter_ocular(self) -> float:
        """Distance between the outer eye corners in pixels (the NME normaliser)."""
        if self.landmark_format == "ibug68":
            a, b = self.landmarks[36], self.landmarks[45]
        else:  # MediaPipe mesh indices of the outer eye corners
            a, b = self.landmarks[33], self.landmarks[263]
        return float(np.linalg.norm(a - b))

    def problem(self) -> str | None:
        """What makes this detection unusable for a fit (one phrase), or None. A detector never produces these;
        a hand-made observation may. Asked by FrameEvidence for a frame marked detected, not on construction (the
        overlay code gives frames without a detection NaN landmarks, marked not detected)."""
        count = LANDMARK_COUNTS[self.landmark_format]
        if self.landmarks.shape != (count, 2):
            return f"{self.landmark_format} needs {count} landmarks of shape ({count}, 2); got {self.landmarks.shape}"
        weights = np.asarray(self.landmark_weights, np.float32)
        if weights.shape != (count,) or not np.isfinite(weights).all() or (weights < 0).any():
            return f"landmark_weights must be {count} finite values >= 0; got shape {weights.shape}"
        seen = weights > 0
        if not seen.any():
            return "every landmark weight is 0 (mark the frame as not detected instead)"
        if not np.isfinite(self.landmarks[seen]).all():
            bad = int((~np.isfinite(self.landmarks[seen]).all(1)).sum())
            return f"{bad} landmark(s) with a weight > 0 are not finite (NaN/inf); give them weight 0 or drop the face"
        span = self.landmarks[seen].max(0) - self.landmarks[seen].min(0)
        if float(span.min()) < MIN_FACE_SPAN_PX:
            return (f"the landmarks span {span[0]:.2g} x {span[1]:.2g} px: no face a fit can use (pixel "
                    "coordinates of the full image are expected)")
        return None


@dataclass
class ImageObservation:
    """Every face found in one image plus what produced them."""

    source: str
    image_size: tuple[int, int]  # (height, width) of the EXIF-oriented full-resolution image
    faces: list[FaceObservation] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    # -- cache round trip --------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write as one .npz (atomically: a temporary file renamed into place)."""
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "source": self.source,
            "image_size": list(self.image_size),
            "settings": self.settings,
            "warnings": self.warnings,
            "faces": [],
        }
        for k, face in enumerate(self.faces):
            meta["faces"].append(
                {
                    "landmark_format": face.landmark_format,
                    "score": float(face.score),
                    "detector": face.detector,
                    "blendshapes": face.blendshapes,
                }
            )
            arrays[f"f{k}_landmarks"] = face.landmarks
            arrays[f"f{k}_bbox"] = face.bbox
            arrays[f"f{k}_weights"] = face.landmark_weights
            if face.landmarks_z is not None:
                arrays[f"f{k}_z"] = np.asarray(face.landmarks_z, np.float32)
            if face.transform is not None:
                arrays[f"f{k}_transform"] = np.asarray(face.transform, np.float32)
            if face.roi is not None:
                arrays[f"f{k}_roi"] = np.asarray(face.roi, np.float32)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

        write_npz(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "ImageObservation":
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            faces = []
            for k, f in enumerate(meta["faces"]):
                faces.append(
                    FaceObservation(
                        landmarks=data[f"f{k}_landmarks"],
                        landmark_format=f["landmark_format"],
                        bbox=data[f"f{k}_bbox"],
                        score=f["score"],
                        landmark_weights=data[f"f{k}_weights"],
                        landmarks_z=data[f"f{k}_z"] if f"f{k}_z" in data else None,
                        blendshapes=f["blendshapes"],
                        transform=data[f"f{k}_transform"] if f"f{k}_transform" in data else None,
                        detector=f["detector"],
                        roi=data[f"f{k}_roi"] if f"f{k}_roi" in data else None,
                    )
                )
        return cls(
            source=meta["source"],
            image_size=tuple(meta["image_size"]),
            faces=faces,
            settings=meta["settings"],
            warnings=meta["warnings"],
        )

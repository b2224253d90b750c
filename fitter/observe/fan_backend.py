"""face-alignment's 2D FAN (Bulat & Tzimiropoulos): 68 iBUG landmarks, used with ``--landmarks fan``.

Weights are never downloaded: they must already be in the torch hub cache,
``$TORCH_HOME/hub/checkpoints/`` (``torch.hub.get_dir()``), where face-alignment itself would put them:

- ``2DFAN4-11f355bf06.pth.tar`` (the landmark network) is required;
- ``s3fd-619a316812.pth`` (face-alignment's face detector) is optional. Without it the FAN crops come from
  MediaPipe's faces (with its tile search), converted to s3fd-like boxes (cheek to cheek, eyebrows to chin).

The FAN path runs face-alignment's own code (``FaceAlignment.get_landmarks_from_image`` with the boxes we
give it) on the image shrunk to ``max_side``; its integer pixel positions are mapped back to the
full-resolution image (+0.5 px to the pixel-centre convention). ``landmark_weights`` are FAN's heatmap peak
scores clipped to [0, 1]. Faces boxed by MediaPipe also carry MediaPipe's blendshapes and transform.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from . import mediapipe_backend as mpb
from .errors import DetectorUnavailableError, MissingWeightsError
from .geometry import points_box, resize
from .types import FaceObservation

DETECTOR_NAME = "fan"
FAN_WEIGHTS = "2DFAN4-11f355bf06.pth.tar"
S3FD_WEIGHTS = "s3fd-619a316812.pth"
WEIGHT_URLS = {
    FAN_WEIGHTS: "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
    S3FD_WEIGHTS: "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
}
BOX_SOURCES = ("auto", "s3fd", "mediapipe")

DEFAULTS: dict = {
    "boxes": "auto",  # "auto": s3fd when its weights are present, else MediaPipe; or force one
    "device": "cpu",
    "flip_input": True,  # average with the mirrored image (face-alignment's default; 2x the cost)
    "s3fd_max_side": 1024,  # s3fd runs on the image shrunk to this long side
    **{k: v for k, v in mpb.DEFAULTS.items()},  # MediaPipe settings (its boxes) and max_side / max_faces
}

# MediaPipe mesh indices: the upper eyebrow contours (both sides); the chin is the lowest mesh point
_MP_BROWS = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 336, 296, 334, 293, 300, 285, 295, 282, 283, 276]


def weights_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` as torch (and face-alignment) resolve it now."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_path(name: str) -> Path:
    return weights_dir() / name


def require_weights(name: str, what: str) -> Path:
    path = weight_path(name)
    if not path.is_file():
        raise MissingWeightsError(what, path, WEIGHT_URLS.get(name, ""))
    return path


def check_settings(settings: dict) -> dict:
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"unknown FAN setting(s) {unknown}; valid: {sorted(DEFAULTS)}")
    fan_keys = ("boxes", "device", "flip_input", "s3fd_max_side")
    s = mpb.check_settings({k: v for k, v in settings.items() if k not in fan_keys})
    s.update({k: settings.get(k, DEFAULTS[k]) for k in fan_keys})
    if s["boxes"] not in BOX_SOURCES:
        raise ValueError(f"boxes must be one of {BOX_SOURCES}, got {s['boxes']!r}")
    s["flip_input"] = bool(s["flip_input"])
    s["s3fd_max_side"] = int(s["s3fd_max_side"])
    s["device"] = str(s["device"])
    return s


def box_source(boxes: str) -> str:
    """The box source ``boxes`` resolves to now: 's3fd' or 'mediapipe'."""
    if boxes == "auto":
        return "s3fd" if weight_path(S3FD_WEIGHTS).is_file() else "mediapipe"
    return boxes


# -- the FaceAlignment instance, shared per process ------------------------------------------------------
_FAN: dict[tuple, object] = {}
_FAN_LOCK = threading.Lock()


def _get_fan(device: str, flip: bool, fan_path: Path, s3fd_path: Path | None):
    key = (device, flip, str(fan_path), fan_path.stat().st_mtime_ns,
           str(s3fd_path) if s3fd_path else None, s3fd_path.stat().st_mtime_ns if s3fd_path else None)
    with _FAN_LOCK:
        fa = _FAN.get(key)
        if fa is None:
            try:
                import face_alignment
            except ImportError as exc:
                raise DetectorUnavailableError(
                    f"--landmarks fan needs the face-alignment package ({exc}); pip install face-alignment"
                ) from exc
            # face-alignment loads hub/checkpoints/2DFAN4-...: present, checked above, so nothing downloads.
            # With no s3fd weights its 'folder' detector (which loads nothing) stands in: we pass the boxes.
            kwargs = {"path_to_detector": str(s3fd_path)} if s3fd_path else {}
            fa = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D,
                device=device,
                flip_input=flip,
                face_detector="sfd" if s3fd_path else "folder",
                face_detector_kwargs=kwargs,
                compile=False,  # torch.compile is slow to start on CPU and needs a compiler
            )
            _FAN.clear()  # keep one network in memory
            _FAN[key] = fa
        return fa


def close_fan() -> None:
    """Drop the cached network (frees its memory)."""
    with _FAN_LOCK:
        _FAN.clear()


def _mediapipe_box(face: FaceObservation) -> np.ndarray:
    """An s3fd-like box (cheek to cheek, a little above the eyebrows to the chin) from MediaPipe's mesh."""
    p = face.landmarks[:468]
    x0, x1 = float(p[:, 0].min()), float(p[:, 0].max())
    top, chin = float(p[_MP_BROWS, 1].min()), float(p[:, 1].max())
    return np.array([x0, top - 0.1 * (chin - top), x1, chin], np.float32)


def detect(rgb: np.ndarray, settings: dict, largest: bool = False,
           prominent: bool = False) -> tuple[list[FaceObservation], list[str]]:
    """68 iBUG landmarks per face of the full-resolution ``rgb`` (H, W, 3) uint8, largest first (``largest``,
    ``prominent``: as mediapipe_backend.detect; s3fd boxes have no tile search to skip)."""
    s = settings
    fan_path = require_weights(FAN_WEIGHTS, "--landmarks fan (face-alignment's 2D FAN)")
    source = box_source(s["boxes"])
    s3fd_path = require_weights(S3FD_WEIGHTS, "face-alignment's s3fd face detector") if source == "s3fd" else None
    fa = _get_fan(s["device"], s["flip_input"], fan_path, s3fd_path)
    h, w = rgb.shape[:2]
    warns: list[str] = []

    # face boxes in full-resolution pixels, each with its MediaPipe face when it came from there
    boxes: list[tuple[np.ndarray, float, FaceObservation | None]] = []
    if source == "s3fd":
        sc = min(1.0, s["s3fd_max_side"] / max(h, w))
        small = resize(rgb, (max(1, round(w * sc)), max(1, round(h * sc)))) if sc < 1 else rgb
        with _FAN_LOCK:
            found = fa.face_detector.detect_from_image(small.copy())
        for b in found:
            boxes.append((np.asarray(b[:4], np.float32) / sc, float(b[4]), None))
        boxes.sort(key=lambda t: -t[1])  # most confident first
    else:
        mp_faces, mp_warns = mpb.detect(rgb, mpb.check_settings({k: s[k] for k in mpb.DEFAULTS}), largest, prominent)
        turns = mpb.quarter_turns(mp_warns)
        if turns:  # FAN reads upright faces: fit the image turned, bring its points back
            turned, _ = detect(np.ascontiguousarray(np.rot90(rgb, turns)), {**s, "rotated": False}, largest, prominent)
            return [mpb.turned_back(f, w, h, turns) for f in turned], mp_warns
        warns += mp_warns
        boxes = [(_mediapipe_box(f), 1.0, f) for f in mp_faces]
    if largest and boxes:
        boxes = [max(boxes, key=lambda t: (t[0][2] - t[0][0]) * (t[0][3] - t[0][1]))]
    boxes = boxes[: s["max_faces"]]
    if not boxes:
        return [], warns

    # FAN on the detection-resolution image
    sc = min(1.0, s["max_side"] / max(h, w))
    det = resize(rgb, (max(1, round(w * sc)), max(1, round(h * sc)))) if sc < 1 else rgb
    sx, sy = det.shape[1] / w, det.shape[0] / h
    # float64: face-alignment writes box-derived numpy scalars into torch tensors (float32 scalars fail)
    det_boxes = [np.array([b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy], np.float64) for b, _, _ in boxes]
    with _FAN_LOCK:
        landmarks, scores, _ = fa.get_landmarks_from_image(det, detected_faces=det_boxes, return_landmark_score=True)
    faces = []
    for (box, score, mp_face), pts, sco in zip(boxes, landmarks or [], scores or []):
        pts = np.asarray(pts, np.float32)[:, :2] + 0.5  # integer pixel index -> pixel-centre position
        pts = pts / np.array([sx, sy], np.float32)
        weights = np.clip(np.nan_to_num(np.asarray(sco, np.float32), nan=0.0), 0.0, 1.0)
        faces.append(
            FaceObservation(
                landmarks=pts,
                landmark_format="ibug68",
                bbox=points_box(pts),
                score=score,
                landmark_weights=weights,
                blendshapes=mp_face.blendshapes if mp_face is not None else None,
                transform=mp_face.transform if mp_face is not None else None,
                detector=f"{DETECTOR_NAME}+{source}",
                roi=mp_face.roi if mp_face is not None else None,
            )
        )
    faces.sort(key=lambda f: -float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
    return faces, warns

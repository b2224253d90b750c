"""Pose guidance from the landmarker's 3D landmarks (after Liu et al., "Learning 3D Face Reconstruction with a
Pose Guidance Network"): the head rotation read off the detector's 3D points, as a starting pose and a term.

MediaPipe's 478 landmarks carry a depth: (u, v) in pixels and z, the depth relative to the head's centre,
scaled like u (the centre's focal / depth) and growing away from the camera. Un-projected with the camera's
focal length f, ``((u - cx) (1 + z / f), (v - cy) (1 + z / f), z)`` are the face's points in the camera frame
up to one scale (the centre's depth over f); the model's embedded points of the same landmarks, in camera axes,
are aligned to them by a weighted similarity (Umeyama), whose rotation is the head's. Un-projecting matters
away from the image centre: a face at the side of a wide shot is seen from the side even when it faces the
camera's axis (read as a flat image, its points would give the rotation relative to the ray through it).
On the synthetic benchmark this guide is nearer the truth than MediaPipe's transform and than PnP
(docs/video.md). MediaPipe's own facial transform (``source = "transform"``) is the alternative guide.

The term compares each image's model -> camera rotation R with its guide G:
``E_f = w_f * ||R - G||_F^2 / (2 sigma^2)`` (about (angle / sigma)^2 for small angles, smooth at zero),
``w_f`` = 1 for a frame with a detection and a guide, 0 otherwise.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..camera import MODEL_TO_OPENCV
from ..common.settings import Setting
from ..model.morphable import MorphableModel
from ..observe.types import FaceObservation
from ..scene import Scene
from .base import Term, TermContext, TermSpec, TermUnavailable, register
from .landmarks import landmark_embedding

SOURCES = ("landmarks3d", "transform")
_FLIP = MODEL_TO_OPENCV.numpy().astype(np.float64)
MIN_POINTS = 6  # a similarity in 3D needs a handful of well-spread points


def embedded_mean(model: MorphableModel, landmark_format: str) -> np.ndarray:
    """The model's mean shape at the landmarks' surface points (N, 3), model frame."""
    emb = landmark_embedding(model, landmark_format)
    corners = model.topology.triangles[emb.triangles]
    mean = model.mean.detach().cpu().numpy().astype(np.float64)
    return np.einsum("nci,nc->ni", mean[corners], emb.barycentrics.astype(np.float64))


def similarity_rotation(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The rotation R of the weighted similarity ``target ~ s R source + c`` (Umeyama, proper rotation)."""
    w = weights / weights.sum()
    a = source - (w[:, None] * source).sum(0)
    b = target - (w[:, None] * target).sum(0)
    u, _, vt = np.linalg.svd((w[:, None] * b).T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def guide_from_landmarks3d(face: FaceObservation, points: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    """Model -> camera rotation (3, 3), axis convention included, from the face's 3D landmarks; None without
    depths or with too few confident points. ``points``: the model's (N, 3) points of the same landmarks."""
    if face.landmarks_z is None:
        return None
    weights = np.asarray(face.landmark_weights, np.float64)
    keep = weights > 0
    if keep.sum() < MIN_POINTS:
        return None
    target = unprojected_landmarks(face, K)
    return similarity_rotation(points[keep] @ _FLIP.T, target[keep], weights[keep]) @ _FLIP


def unprojected_landmarks(face: FaceObservation, K: np.ndarray) -> np.ndarray:
    """The face's 3D landmarks (N, 3) in the camera frame (OpenCV axes) up to one scale, the face centre's depth
    over the focal length; the face must carry depths (``landmarks_z``)."""
    K = np.asarray(K, np.float64)
    uv = np.asarray(face.landmarks, np.float64)
    z = np.asarray(face.landmarks_z, np.float64)
    # depth Z = Zc (1 + z / f), Zc the face centre's: un-projected, the points are camera points up to Zc / f
    grow = 1.0 + z / K[0, 0]
    return np.stack([(uv[:, 0] - K[0, 2]) * grow, (uv[:, 1] - K[1, 2]) * grow, z], 1)


def guide_from_transform(face: FaceObservation) -> np.ndarray | None:
    """Model -> camera rotation (3, 3) from MediaPipe's facial transform (None when it has none)."""
    if face.transform is None or not np.isfinite(face.transform).all():
        return None
    r = np.asarray(face.transform, np.float64)[:3, :3]
    r = r / np.cbrt(np.linalg.det(r))
    u, _, vt = np.linalg.svd(r)
    return _FLIP @ (u @ vt)  # facefit's head rotation is FLIP R_mp FLIP; the model -> camera matrix adds a FLIP


def guide_rotation(face: FaceObservation, points: np.ndarray, K: np.ndarray, source: str) -> np.ndarray | None:
    """The guide of one detected face from ``source`` (``landmarks3d`` or ``transform``)."""
    if source == "landmarks3d":
        return guide_from_landmarks3d(face, points, K)
    if source == "transform":
        return guide_from_transform(face)
    raise ValueError(f"unknown pose guide {source!r}; choose one of {SOURCES}")


class PoseGuidanceTerm(Term):
    name = "pose_guidance"

    def __init__(self, guides: torch.Tensor, weights: torch.Tensor, sigma: float) -> None:
        self.guides = guides  # (F, 3, 3)
        self.weights = weights  # (F,)
        self.sigma = float(sigma)  # radians

    def __call__(self, scene: Scene) -> torch.Tensor:
        r = scene.state.rotation_matrix()
        diff = (r - self.guides.to(r)).pow(2).sum((-1, -2))
        return self.weights.to(r) * diff / (2.0 * self.sigma**2)

    @torch.no_grad()
    def diagnostics(self, scene: Scene) -> dict[str, list[float]]:
        """Angle (degrees) between each image's rotation and its guide (NaN without a guide)."""
        r = scene.state.rotation_matrix()
        cos = ((r.transpose(-1, -2) @ self.guides.to(r)).diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
        angle = torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
        return {"guide_angle_deg": torch.where(self.weights > 0, angle, torch.nan).tolist()}


def build(ctx: TermContext) -> PoseGuidanceTerm:
    cfg = ctx.section("pose_guidance")
    source = str(cfg["source"])
    points = embedded_mean(ctx.model, ctx.evidence.landmark_format)
    guides, weights = [], []
    for f in ctx.evidence.frames:
        h, w = f.image_size
        focal = ctx.focal_guess[min(f.view, len(ctx.focal_guess) - 1)]
        K = np.array([[focal, 0, w / 2.0], [0, focal, h / 2.0], [0, 0, 1.0]])
        guide = guide_rotation(f.face, points, K, source) if f.detected else None
        guides.append(np.eye(3) if guide is None else guide)
        weights.append(0.0 if guide is None else 1.0)
    if not any(weights):
        raise TermUnavailable(f"no frame has a {source} pose guide (MediaPipe landmarks carry one; FAN's do not)")
    return PoseGuidanceTerm(torch.as_tensor(np.stack(guides), dtype=torch.float32, device=ctx.device),
                            torch.as_tensor(weights, dtype=torch.float32, device=ctx.device),
                            math.radians(float(cfg["sigma_deg"])))


SPEC = register(TermSpec(
    "pose_guidance", build,
    settings={
        "source": Setting("str", "where the guide rotation comes from", choices=SOURCES),
        "sigma_deg": Setting("float", "the guide's rotation error, degrees", positive=True),
    },
    doc="head rotation near the one read off the detector's 3D landmarks"))

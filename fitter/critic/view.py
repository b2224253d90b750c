"""What the critic looks at: the photo inside the fitting crop, and a grey render of a geometry in that crop.

The grey render shows shape only: the face-skin triangles under one fixed light (``SH_GREY``) with a constant
albedo, composited over a seeded noise background and antialiased at the outline, so that no albedo or
lighting estimate is needed and its gradient reaches the vertices both through the shading and through the
silhouette. Training (fitter.critic.train) and fitting (fitter.energy.critic) call the same functions here,
so the critic sees at fit time exactly what it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..crop import FitCrop
from ..model.morphable import MorphableModel
from ..render import SH_GREY, antialias, rasterize, shade_grey

REGION = "narrow_face"  # the model region the grey render shows (with the face-skin rule)
GREY_ALBEDO = 0.8  # the grey render's constant albedo: bright enough to use the range, never clipped by SH_GREY


def face_triangles(model: MorphableModel) -> torch.Tensor:
    """(T', 3) vertex ids of the triangles the grey render shows: face skin (the model's one face rule) inside
    the ``narrow_face`` region when the model has one: the front of the face (the scalp, ears and neck are
    mostly hidden by hair and clothes in photos, and their outline says little about the face's shape)."""
    topo = model.topology
    keep = topo.face_triangles()
    if REGION in topo.regions:
        keep = np.intersect1d(keep, topo.triangles_in(topo.region(REGION)))
    return torch.as_tensor(topo.triangles[keep], device=model.device)


@dataclass
class FaceMesh:
    """The part of the model the grey render shows: the vertices its triangles use, the triangles renumbered,
    the model's mean and bases cut to those vertices (training renders thousands of geometries; evaluating the
    whole head, eyes and mouth for each would double the cost)."""

    index: torch.Tensor  # (N,) model vertex ids
    triangles: torch.Tensor  # (T', 3) ids into ``index``
    mean: torch.Tensor  # (N * 3,)
    identity_basis: torch.Tensor  # (K_id, N * 3)
    expression_basis: torch.Tensor  # (K_exp, N * 3)

    @classmethod
    def of(cls, model: MorphableModel) -> "FaceMesh":
        tris = face_triangles(model)
        index, remapped = torch.unique(tris, return_inverse=True)
        cols = (index[:, None] * 3 + torch.arange(3, device=index.device)).reshape(-1)
        return cls(index, remapped.reshape(-1, 3), model.mean.reshape(-1)[cols], model.identity_basis[:, cols],
                   model.expression_basis[:, cols])

    def vertices(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """Model-frame vertices (F, N, 3) for identity (F, K_id) and expression (F, K_exp)."""
        flat = self.mean + identity @ self.identity_basis + expression @ self.expression_basis
        return flat.reshape(len(flat), -1, 3)


def noise_background(frames: int, size: int, seeds: list[int] | np.ndarray) -> torch.Tensor:
    """(F, size, size) uniform grey noise, one seeded field per frame: the background a grey render stands on
    (so the silhouette is visible and a fixed seed keeps an energy deterministic)."""
    out = np.empty((frames, size, size), np.float32)
    for f in range(frames):
        out[f] = np.random.default_rng(int(seeds[f])).random((size, size), dtype=np.float32)
    return torch.from_numpy(out)


def grey_view(camera_vertices: torch.Tensor, triangles: torch.Tensor, K_crop: torch.Tensor, size: int,
              background: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Grey renders (F, 1, size, size) in [0, 1] of camera-frame vertices (F, V, 3) seen through crop
    intrinsics (F, 3, 3), over ``background`` (F, size, size); differentiable w.r.t. the vertices."""
    frags = rasterize(camera_vertices, triangles, K_crop, (size, size), backend=backend)
    light = SH_GREY.to(camera_vertices)
    grey = shade_grey(frags, camera_vertices, triangles, sh=light, albedo=GREY_ALBEDO)  # (F, S, S, 1)
    composite = torch.where(frags.mask[..., None], grey, background.to(grey)[..., None])
    return antialias(composite, frags).permute(0, 3, 1, 2).clamp(0.0, 1.0)


def photo_view(photo: np.ndarray, crop: FitCrop) -> np.ndarray:
    """The photo inside ``crop``: (3, S, S) float32 sRGB in [0, 1] from an (H, W, 3) uint8 or float image."""
    rgb = photo.astype(np.float32) / 255.0 if photo.dtype == np.uint8 else photo.astype(np.float32)
    return np.ascontiguousarray(crop.image(np.ascontiguousarray(rgb)).transpose(2, 0, 1))


def crop_K(crops: list[FitCrop], K: torch.Tensor) -> torch.Tensor:
    """Per-frame intrinsics (F, 3, 3) projecting straight into each frame's crop (K: (F, 3, 3) or (1, 3, 3))."""
    return torch.cat([crop.K(K[min(f, K.shape[0] - 1)][None]) for f, crop in enumerate(crops)])

"""The face's outline against the photo's background, without rendering: a term for the landmark-speed stages.

Part masks drawn from the landmarks carry the detector's outline (on a turned face the far cheek's contour lies
on the surface, not on the silhouette), so PRDL on them cannot tell a face that bulges past its real outline.
The photo can: GrabCut reads which pixels of the crop show background (fitter.observe.background). Every vertex
of the front of the face (``region``) must project onto the face, never onto that background, because every
point of a mesh projects inside the mesh's own outline. Each vertex pays the squared distance by which it lies
inside the background, read from the background's distance transform (bilinear, so the pull points back to the
nearest face pixel):

    E = mean_v (D(proj(v)) / (sigma * S))^2        D: distance (crop px) into the background, 0 off it

With ``robust_delta`` > 0 each vertex's cost saturates (Geman-McClure): a vertex deep inside what GrabCut calls
background, where GrabCut is likelier wrong, pulls little. The term is one-sided: it never pulls the face
outwards (hair, ears and the neck lie between face and background on most of the outline, so where the outline
ends is not known, only where it must not go).
The photometric term holds the rendered outline against the same background (``background_cost``); this is the
same evidence for stages that do not render. No preset weighs it: on the wild renders, real photos and uncalibrated
rigs it gained nothing that held (docs/fitting.md, "The outline without rendering").
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..common.settings import Setting
from ..crop import FitCrop
from ..model.morphable import MorphableModel
from ..scene import Scene
from .base import Term, TermContext, TermSpec, geman_mcclure, register
from .photo_target import BACKGROUND_REGIONS, PhotoTarget


def intrusion_field(background: np.ndarray) -> np.ndarray:
    """(S, S) float32 signed distance (px) from each pixel centre to the background's edge: positive on the
    background, negative off it (so that bilinear samples cross 0 at the edge itself, not half a pixel away).
    All negative (no background): nothing is charged."""
    if not background.any():
        return np.full(background.shape, -float(max(background.shape)), np.float32)
    inside = cv2.distanceTransform(background.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~background).astype(np.uint8), cv2.DIST_L2, 5)
    return np.where(background, inside - 0.5, 0.5 - outside).astype(np.float32)


def sample_field(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (N,) of a (S, S) field at crop pixel coordinates (N, 2) (pixel-corner convention: the
    centre of pixel (i, j) is (j + 0.5, i + 0.5)); the border's value outside the crop."""
    size = field.shape[-1]
    grid = (points / size * 2.0 - 1.0).reshape(1, 1, -1, 2)
    return F.grid_sample(field[None, None], grid.to(field), mode="bilinear", padding_mode="border",
                         align_corners=False).reshape(-1)


class OutlineTerm(Term):
    """mean_v rho(D(proj(v)) / (sigma * S)) per frame over the front of the face's vertices (rho: x^2, or
    Geman-McClure with knee ``robust_delta``)."""

    name = "outline"

    def __init__(self, model: MorphableModel, crops: list[FitCrop], fields: list[torch.Tensor],
                 region: str = "narrow_face", sigma: float = 0.01, points: int = 1000,
                 robust_delta: float = 0.0) -> None:
        self.crops = crops
        self.delta = robust_delta
        self.fields = fields  # per frame (S, S) intrusion distances in crop pixels
        self.sigma = sigma
        topology = model.topology
        if region in topology.regions:
            chosen = topology.region_sample(region, points)
        else:  # a model without the region (small test models): every vertex, evenly thinned
            chosen = np.arange(0, model.num_vertices, max(1, model.num_vertices // points))[:points]
        self.vertices = torch.as_tensor(chosen, device=model.device)

    def intrusion(self, scene: Scene) -> torch.Tensor:
        """(F, N) crop pixels by which each sampled vertex lies inside the photo's background."""
        pix, _ = scene.project(scene.vertices_at(self.vertices))
        return torch.stack([sample_field(field, crop.to_crop(pix[f])).clamp(min=0.0)
                            for f, (crop, field) in enumerate(zip(self.crops, self.fields))])

    def __call__(self, scene: Scene) -> torch.Tensor:
        sizes = torch.tensor([float(c.size) for c in self.crops], device=scene.state.device)
        x = self.intrusion(scene) / (self.sigma * sizes[:, None])
        return (geman_mcclure(x, self.delta) if self.delta > 0 else x * x).mean(-1)

    @torch.no_grad()
    def diagnostics(self, scene: Scene) -> dict[str, list[float]]:
        """The share of the face's sampled vertices that lie on the background, per frame."""
        return {"outline_on_background": (self.intrusion(scene) > 0).float().mean(-1).tolist()}


def build(ctx: TermContext) -> OutlineTerm:
    cfg = ctx.section("outline")
    crop_cfg = ctx.section("crop")
    crops, fields = [], []
    for frame in ctx.evidence.frames:
        crop = frame.crop(int(crop_cfg["size"]), float(crop_cfg["margin"]))
        target = PhotoTarget.from_photo(frame.photo, crop, frame.masks, tuple(ctx.section("photo")["parts"]))
        crops.append(crop)
        fields.append(torch.as_tensor(intrusion_field(target.background), device=ctx.device))
    return OutlineTerm(ctx.model, crops, fields, region=str(cfg["region"]), sigma=float(cfg["sigma"]),
                       points=int(cfg["points"]), robust_delta=float(cfg["robust_delta"]))


SPEC = register(TermSpec(
    "outline", build, needs=("photo", "masks"),
    settings={
        "sigma": Setting("float", "outline noise as a fraction of the crop side", positive=True),
        "region": Setting("str", "model region that may not project onto the background", choices=BACKGROUND_REGIONS),
        "points": Setting("int", "evenly spaced vertices of the region", low=1),
        "robust_delta": Setting("float", "Geman-McClure knee in units of sigma (a vertex deep inside what GrabCut "
                                "calls background pulls little: GrabCut may be wrong there); 0 = quadratic", low=0),
    },
    doc="the front of the face kept off the photo's background (GrabCut), without rendering"))

"""Cross-view colour agreement: a point of the skin seen by two cameras of one instant shows one colour.

Diffuse skin reflects light the same way in every direction, so in a rig lit by one light (fixed in the room)
the colour a surface point has in one view is the colour it has in every other, whatever the light and the
albedo are: the term needs neither. It compares views through the fitted surface itself, so the wrong shape,
head pose or camera placement puts the points on different skin in different views, and the colours disagree.
This is the cue landmarks cannot give a near-profile camera (docs/video.md: an uncalibrated rig's rotations
came within 1.6-12.7 deg from landmarks alone).

    E_f = sum over the other views g of f's instant of
          N sum_i w_fi w_gi rho(|c_f(p_i) / m_f - c_g(p_i) / m_g| / scale) / sum_i w_fi w_gi   (halved per image)

over evenly spaced vertices p_i of the face region; c_f: photo f (linear RGB inside its fitting crop, at
``resolution`` px, bilinear), m_f its colour averaged over the points both views see (exposure and white
balance differ per camera), w: how squarely the surface faces each camera (0 below ``facing_min``, 1 above
``facing_full``) times the photo's comparable pixels (segmented skin without occluders), rho the pseudo-Huber
loss. The weighted mean (times the N points, so the term is O(its residuals) like the others) cannot be lowered
by turning the surface so that fewer points are shared. Occlusion by the face itself (the nose over a cheek) is
not modelled: the facing weight keeps points near a view's silhouette out. A single photo, or an instant seen by
one camera, has no pairs and costs 0.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf

from ..camera import project
from ..common.settings import Setting
from ..model.morphable import MorphableModel
from ..render import vertex_normals
from ..scene import Scene
from .base import Term, TermContext, TermSpec, register
from .photo_target import PhotoTargets, crop_intrinsics, photo_targets

_MEAN_FLOOR = 1e-3  # linear colour: a view whose shared points are black has no colour to compare


def image_pairs(instants: np.ndarray, views: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """(P, 2) indices of detected images of one instant seen by different views."""
    pairs = [(a, b) for a in range(len(instants)) for b in range(a + 1, len(instants))
             if detected[a] and detected[b] and instants[a] == instants[b] and views[a] != views[b]]
    return np.asarray(pairs, np.int64).reshape(-1, 2)


def sample_colours(images: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear colours (F, N, C) of images (F, S, S, C) at pixels (F, N, 2) (pixel centres at +0.5)."""
    size = images.shape[1]
    grid = (pixels / size * 2.0 - 1.0)[:, :, None]  # (F, N, 1, 2)
    out = nnf.grid_sample(images.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    return out[..., 0].transpose(1, 2)


def facing_weights(points: torch.Tensor, normals: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(F, N) in [0, 1]: 0 where a camera-frame surface point is seen more obliquely than ``low`` (cosine
    between its normal and the direction to the camera), 1 from ``high``, smooth between."""
    cosine = (normals * -nnf.normalize(points, dim=-1)).sum(-1)
    return ((cosine - low) / (high - low)).clamp(0.0, 1.0)


class CrossViewTerm(Term):
    name = "crossview"

    def __init__(self, model: MorphableModel, targets: PhotoTargets, pairs: np.ndarray, resolution: int = 128,
                 points: int = 1500, region: str = "face", facing: tuple[float, float] = (0.3, 0.6),
                 scale: float = 0.05) -> None:
        self.index = torch.as_tensor(model.topology.region_sample(region, points), device=model.device)
        self.triangles = torch.as_tensor(model.topology.triangles, device=model.device).long()
        self.targets = targets
        self.pairs = torch.as_tensor(pairs, device=model.device)
        self.resolution = int(resolution)
        self.facing = (float(facing[0]), float(facing[1]))
        self.scale = float(scale)

    def __call__(self, scene: Scene) -> torch.Tensor:
        frames = scene.state.num_frames
        cam = scene.camera_vertices()
        if len(self.pairs) == 0:
            return cam.new_zeros(frames)
        crops, images, valid = self.targets.level(self.resolution, cam.device)
        points = cam[:, self.index]
        normals = vertex_normals(cam, self.triangles)[:, self.index]
        pixels = project(points, crop_intrinsics(crops, scene.K()))
        colours = sample_colours(images.to(cam), pixels)  # (F, N, 3)
        comparable = sample_colours(valid[..., None].to(cam), pixels.detach())[..., 0] > 0.5
        weight = facing_weights(points, normals, *self.facing) * comparable
        a, b = self.pairs[:, 0], self.pairs[:, 1]
        w = weight[a] * weight[b]  # (P, N)
        total = w.sum(1).clamp(min=1e-6)

        def relative(c: torch.Tensor) -> torch.Tensor:
            mean = (c * w[..., None]).sum(1) / total[:, None]
            return c / mean.clamp(min=_MEAN_FLOOR)[:, None]

        squared = ((relative(colours[a]) - relative(colours[b])) ** 2).sum(-1) / self.scale**2
        loss = 2.0 * (torch.sqrt(1.0 + squared) - 1.0)  # pseudo-Huber of the norm (knee 1), smooth where it is 0
        per_pair = len(self.index) * (w * loss).sum(1) / total
        return cam.new_zeros(frames).index_add(0, a, per_pair / 2).index_add(0, b, per_pair / 2)


def build(ctx: TermContext) -> CrossViewTerm:
    cfg = ctx.section("crossview")
    frames = ctx.evidence.frames
    instants = np.array([f.instant if f.instant is not None else -1 - k for k, f in enumerate(frames)])
    pairs = image_pairs(instants, np.array([f.view for f in frames]), np.array([f.detected for f in frames]))
    return CrossViewTerm(ctx.model, photo_targets(ctx), pairs, int(cfg["resolution"]), int(cfg["points"]),
                         str(cfg["region"]), (float(cfg["facing_min"]), float(cfg["facing_full"])),
                         float(cfg["scale"]))


SPEC = register(TermSpec(
    "crossview", build, needs=("photo",),
    settings={
        "resolution": Setting("int", "size of the photo crops compared (px; coarser: a wider basin)", low=8),
        "points": Setting("int", "evenly spaced face-region vertices compared", low=1),
        "region": Setting("str", "model region whose vertices are compared"),
        "facing_min": Setting("float", "cosine between normal and view direction below which a view does not "
                                       "see a point", low=-1.0, high=1.0),
        "facing_full": Setting("float", "cosine from which a view sees a point fully", low=-1.0, high=1.0),
        "scale": Setting("float", "colour difference (relative to the views' mean colour) at the loss's knee",
                         positive=True),
    },
    doc="the colour of a surface point agrees between the views of one instant (multi-view rigs)"))

"""PRDL, the Part Re-projection Distance Loss (Wang et al., CVPR 2024), built from the paper's description.

Facial-part segmentation becomes point sets: every foreground pixel of a part in the photo (targets) and the
projected visible model vertices labelled with that part (predictions). Rather than matching points one to
one, PRDL compares *distance statistics* seen from a regular grid of anchors over the fitting crop: for each
anchor and part, the distance to the nearest point, to the farthest point and the mean distance. A part that
is too small, too large, shifted or rotated changes these statistics at every anchor, so the loss gives
useful gradients even far from the optimum and without landmarks.

    E = sum_p w_p * mean_anchors || stats(pred_p) - stats(target_p) ||^2 / sigma^2

Distances are in units of the crop side, so weights do not depend on resolution. Target statistics are
computed once per image. Parts absent from the image (no pixels) get weight 0. ``soft`` > 0 replaces the
min/max by soft-min/soft-max with that temperature (smoother gradients when the nearest point changes).
Visibility of the predicted vertices (front-facing and not occluded) is recomputed between optimiser rounds
by rasterising the current mesh; between those updates the point sets are fixed and gradients flow through
the projected positions. Every frame has its own crop, targets and visible set; the energy is per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from ..common.settings import Setting
from ..crop import FitCrop
from ..model.morphable import MorphableModel
from ..observe.segmentation import PART_NAMES, PartMasks
from ..render import rasterize, vertex_normals
from ..scene import Scene
from .base import Term, TermContext, TermSpec, TermUnavailable, register


# -- point sets and statistics ---------------------------------------------------------------------------
def farthest_point_sampling(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` points spread over ``points`` (N, D) by greedy farthest-point sampling (exact on at most
    4k candidates drawn uniformly from the set)."""
    n = len(points)
    if n <= k:
        return np.arange(n)
    candidates = np.arange(n)
    if n > 4 * k:  # thin a dense pixel set evenly first: FPS costs O(n k) and the result barely changes
        candidates = np.random.default_rng(seed + 1).choice(n, 4 * k, replace=False)
    start = int(np.random.default_rng(seed).integers(len(candidates)))
    return candidates[_fps(np.ascontiguousarray(points[candidates], np.float64), k, start)]


@numba.njit(cache=True)
def _fps(points, k, start):  # pragma: no cover - compiled
    n, dim = points.shape
    chosen = np.empty(k, np.int64)
    dist = np.full(n, np.inf)
    cur = start
    for i in range(k):
        chosen[i] = cur
        best, best_d = 0, -1.0
        for j in range(n):
            d = 0.0
            for c in range(dim):
                t = points[j, c] - points[cur, c]
                d += t * t
            if d < dist[j]:
                dist[j] = d
            if dist[j] > best_d:
                best_d = dist[j]
                best = j
        cur = best
    return chosen


def anchor_grid(size: int, count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(count*count, 2) anchor positions at the centres of a regular grid over a (size x size) crop."""
    c = (torch.arange(count, dtype=torch.float32, device=device) + 0.5) * (size / count)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


def distance_stats(anchors: torch.Tensor, points: torch.Tensor, soft: float = 0.0, chunk: int = 4096) -> torch.Tensor:
    """(A, 3) nearest, farthest and mean distance from each anchor (A, 2) to ``points`` (N, 2)."""
    out = []
    for a in anchors.split(chunk):
        d = torch.cdist(a, points)  # (a, N)
        if soft > 0:
            near = -soft * torch.logsumexp(-d / soft, dim=1) + soft * np.log(d.shape[1])
            far = soft * torch.logsumexp(d / soft, dim=1) - soft * np.log(d.shape[1])
        else:
            near, far = d.min(1).values, d.max(1).values
        out.append(torch.stack([near, far, d.mean(1)], -1))
    return torch.cat(out)


# -- targets from masks ----------------------------------------------------------------------------------
@dataclass
class PRDLTargets:
    """One frame's target statistics."""

    crop: FitCrop
    anchors: torch.Tensor  # (A, 2) crop pixels
    stats: torch.Tensor  # (P, A, 3) distances / crop size
    present: torch.Tensor  # (P,) bool: the part has pixels in the image
    counts: list[int]  # target points per part


def target_points(masks: PartMasks, part: str, max_points: int, crop: FitCrop) -> np.ndarray:
    """Crop coordinates (N, 2) of a part's pixels (skin: below the brows, without occluded pixels), one point
    per crop pixel (a big face in a big photo has far more pixels than anchors can tell apart), then reduced
    to ``max_points`` by farthest-point sampling."""
    pts = masks.points(part, below_brows=(part == "skin"), visible=True)
    if len(pts) == 0:
        return np.zeros((0, 2), np.float32)
    in_crop = (pts - [crop.x0, crop.y0]) * crop.scale
    if crop.scale < 1:  # several photo pixels per crop pixel: keep one point per crop pixel
        cell = np.floor(in_crop).astype(np.int64)
        key = np.unique((cell[:, 1] + 1) * (crop.size + 2) + (cell[:, 0] + 1))
        in_crop = np.stack([key % (crop.size + 2) - 1, key // (crop.size + 2) - 1], 1) + 0.5
    pts = in_crop
    if len(pts) > max_points:
        pts = pts[farthest_point_sampling(pts, max_points)]
    return pts.astype(np.float32)


def build_targets(masks: PartMasks, crop: FitCrop, grid: int = 48, skin_points: int = 3000,
                  part_points: int = 3000, soft: float = 0.0, device: str | torch.device = "cpu") -> PRDLTargets:
    """Anchors over the crop and each part's target statistics (computed once per image)."""
    anchors = anchor_grid(crop.size, grid, device)
    stats, present, counts = [], [], []
    for part in PART_NAMES:
        pts = target_points(masks, part, skin_points if part == "skin" else part_points, crop)
        counts.append(len(pts))
        if len(pts) == 0:
            stats.append(torch.zeros(len(anchors), 3, device=device))
            present.append(False)
            continue
        crop_pts = torch.as_tensor(pts, dtype=torch.float32, device=device)
        stats.append(distance_stats(anchors, crop_pts, soft) / crop.size)
        present.append(True)
    return PRDLTargets(crop, anchors, torch.stack(stats), torch.tensor(present, device=device), counts)


# -- the energy ------------------------------------------------------------------------------------------
class PRDLTerm(Term):
    name = "prdl"

    def __init__(self, model: MorphableModel, targets: PRDLTargets | list[PRDLTargets],
                 part_weights: dict[str, float] | None = None, sigma: float = 0.01, soft: float = 0.0,
                 max_points: int = 800, raster_size: int = 192) -> None:
        if "parts" not in model.topology.vertex_labels:
            raise TermUnavailable(f"model {model.name!r} has no part labels; PRDL needs them "
                                  "(assets/build/build_part_labels.py makes ICT's)")
        self.model = model
        self.targets = targets if isinstance(targets, list) else [targets]  # one per frame
        self.sigma = sigma
        self.soft = soft
        self.max_points = max_points
        self.raster_size = raster_size
        weights = part_weights or {}
        base = torch.tensor([float(weights.get(p, 1.0)) for p in PART_NAMES])
        self.weights = [base * t.present.cpu() for t in self.targets]  # (P,) per frame
        labels = model.topology.vertex_labels["parts"]
        self.part_vertices = [np.flatnonzero(labels == k + 1) for k in range(len(PART_NAMES))]
        self.index: list[torch.Tensor] | None = None  # per frame: visible part vertices, concatenated
        self.segments: list[list[tuple[int, int]]] = []  # per frame: (start, end) per part in its index
        self.rngs = [np.random.default_rng(f) for f in range(len(self.targets))]
        self.triangles = torch.as_tensor(model.topology.triangles, device=model.device)

    @torch.no_grad()
    def visible_vertices(self, scene: Scene, frame: int = 0) -> np.ndarray:
        """(V,) bool: vertices of a triangle seen in a raster of the frame's crop, and facing the camera."""
        topo = self.model.topology
        cam = scene.camera_vertices()[frame : frame + 1]
        crop = self.targets[frame].crop
        small = FitCrop(crop.x0, crop.y0, crop.side, self.raster_size)
        frags = rasterize(cam, topo.triangles, small.K(scene.K()[frame : frame + 1]),
                          (self.raster_size, self.raster_size))
        seen = torch.zeros(len(topo.triangles), dtype=torch.bool)
        seen[frags.pix_triangle.cpu()] = True
        visible = np.zeros(topo.num_vertices, bool)
        visible[topo.triangles[seen.numpy()].reshape(-1)] = True
        normals = vertex_normals(cam, self.triangles)[0]
        facing = ((normals * cam[0]).sum(-1) < 0).cpu().numpy()
        return visible & facing

    @torch.no_grad()
    def update(self, scene: Scene) -> None:
        """Re-select each frame's visible vertices of each part (between optimiser rounds)."""
        self.index, self.segments = [], []
        for frame, rng in enumerate(self.rngs):
            visible = self.visible_vertices(scene, frame)
            chosen, segments, start = [], [], 0
            for verts in self.part_vertices:
                v = verts[visible[verts]]
                if len(v) > self.max_points:
                    v = np.sort(rng.choice(v, self.max_points, replace=False))
                chosen.append(v)
                segments.append((start, start + len(v)))
                start += len(v)
            self.index.append(torch.as_tensor(np.concatenate(chosen), device=scene.state.device))
            self.segments.append(segments)

    def predicted_stats(self, scene: Scene, frame: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, A, 3) statistics of the frame's projected visible vertices, and (P,) bool: the part has some."""
        if self.index is None:
            self.update(scene)
        targets = self.targets[frame]
        pix, _ = scene.project(scene.vertices_at(self.index[frame]))
        crop_pts = targets.crop.to_crop(pix[frame])
        stats, has = [], []
        for start, end in self.segments[frame]:
            if end - start == 0:
                stats.append(torch.zeros_like(targets.stats[0]))
                has.append(False)
                continue
            stats.append(distance_stats(targets.anchors, crop_pts[start:end], self.soft) / targets.crop.size)
            has.append(True)
        return torch.stack(stats), torch.tensor(has)

    def __call__(self, scene: Scene) -> torch.Tensor:
        energies = []
        for frame, targets in enumerate(self.targets):
            pred, has = self.predicted_stats(scene, frame)
            w = (self.weights[frame] * has).to(pred)
            per_part = ((pred - targets.stats) ** 2).sum(-1).mean(-1) / self.sigma**2  # (P,)
            energies.append((w * per_part).sum())
        return torch.stack(energies)


def build(ctx: TermContext) -> PRDLTerm:
    cfg = ctx.section("prdl")
    crop_cfg = ctx.section("crop")
    targets = [build_targets(f.masks, f.crop(crop_cfg["size"], crop_cfg["margin"]), grid=int(cfg["grid"]),
                             skin_points=int(cfg["skin_points"]), part_points=int(cfg["part_points"]),
                             soft=float(cfg["soft"]), device=ctx.device)
               for f in ctx.evidence.frames]
    return PRDLTerm(ctx.model, targets, dict(cfg["part_weights"]), sigma=float(cfg["sigma"]), soft=float(cfg["soft"]),
                    max_points=int(cfg["max_points"]), raster_size=int(cfg["raster_size"]))


SPEC = register(TermSpec(
    "prdl", build, needs=("masks",),
    settings={
        "grid": Setting("int", "anchors per side of the crop", low=2),
        "sigma": Setting("float", "statistics noise as a fraction of the crop side", positive=True),
        "soft": Setting("float", "soft-min/max temperature (fraction of the crop side); 0 = hard", low=0),
        "skin_points": Setting("int", "skin target points after farthest-point sampling", low=1),
        "part_points": Setting("int", "other parts' target points", low=1),
        "max_points": Setting("int", "visible model vertices per part", low=1),
        "raster_size": Setting("int", "visibility raster of the crop (pixels)", low=16),
        "part_weights": Setting("table", "weight per part", low=0, choices=PART_NAMES),
    },
    doc="part segmentation compared through distance statistics from grid anchors"))

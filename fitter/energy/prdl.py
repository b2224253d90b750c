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
The predicted point sets are chosen between optimiser rounds by rasterising the current mesh over the crop;
between those updates they are fixed and gradients flow through their projected positions. Every frame has its
own crop, targets and point sets; the energy is per frame. Two choices of predicted points (``points``):

- ``"surface"`` (default): the pixels the rendered part covers, each kept as a fixed surface point (its
  triangle and barycentrics) that moves with the mesh. Same density as the target pixels, so the mean
  distance compares like with like, and the points are exactly what the part IoU sees.
- ``"vertices"``: the visible (front-facing, unoccluded) model vertices of the part, as the paper projects
  its mesh. ICT's vertices are far denser around the eyelids and lips than elsewhere, which biases the mean
  statistic towards those edges (measured slightly worse on wild renders, real photos and GRID, docs/prdl.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..camera import project
from ..common.compiled import njit_cached
from ..common.settings import Setting
from ..crop import FitCrop, below_line
from ..model.morphable import MorphableModel
from ..observe.segmentation import PART_NAMES, PartMasks
from ..render import rasterize, render_labels, vertex_normals
from ..scene import Scene
from .base import Term, TermContext, TermSpec, TermUnavailable, register
from .point_distances import distance_stats, part_distance_stats


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


@njit_cached()
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


# -- targets from masks ----------------------------------------------------------------------------------
@dataclass
class PRDLTargets:
    """One frame's target statistics."""

    crop: FitCrop
    anchors: torch.Tensor  # (A, 2) crop pixels
    stats: torch.Tensor  # (P, A, 3) distances / crop size
    present: torch.Tensor  # (P,) bool: the part has pixels in the image
    counts: list[int]  # target points per part
    brow_line: np.ndarray | None = None  # (px, py, nx, ny) in crop pixels: target skin lies on the (n) side


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
    # the skin targets stop at the brows: so must the predicted skin
    line = None if masks.brow_line is None else crop.line(masks.brow_line)
    return PRDLTargets(crop, anchors, torch.stack(stats), torch.tensor(present, device=device), counts, line)


# -- the energy ------------------------------------------------------------------------------------------
POINT_MODES = ("surface", "vertices")


class PRDLTerm(Term):
    name = "prdl"

    def __init__(self, model: MorphableModel, targets: PRDLTargets | list[PRDLTargets],
                 part_weights: dict[str, float] | None = None, sigma: float = 0.01, soft: float = 0.0,
                 max_points: int = 800, raster_size: int = 192, points: str = "surface") -> None:
        if "parts" not in model.topology.vertex_labels:
            raise TermUnavailable(f"model {model.name!r} has no part labels; PRDL needs them "
                                  "(assets/build/build_part_labels.py makes ICT's)")
        self.model = model
        self.targets = targets if isinstance(targets, list) else [targets]  # one per frame
        self.sigma = sigma
        self.soft = soft
        self.max_points = max_points
        self.raster_size = raster_size
        if points not in POINT_MODES:
            raise ValueError(f"[prdl] points must be one of {POINT_MODES}, not {points!r}")
        self.points = points
        self.part_weights = dict(part_weights or {})
        self.set_part_weights(self.part_weights)
        labels = model.topology.vertex_labels["parts"]
        self.part_vertices = [np.flatnonzero(labels == k + 1) for k in range(len(PART_NAMES))]
        self.index: list[torch.Tensor] | None = None  # per frame: visible part vertices, concatenated
        self.bary: list[torch.Tensor] = []  # per frame, surface points: (M, 3) barycentrics in their triangles ...
        self.corners: list[torch.Tensor] = []  # ... and (M, 3) positions of their triangles' corners in index
        self.segments: list[list[tuple[int, int]]] = []  # per frame: (start, end) per part in its index
        self.union: torch.Tensor | None = None  # several frames: every frame's index vertices, each once ...
        self.local: list[torch.Tensor] = []  # ... and per frame, the positions of its index in the union
        self.generation = 0  # counts the updates: a scene's posed union belongs to one
        self.rngs = [np.random.default_rng(f) for f in range(len(self.targets))]
        self.triangles = torch.as_tensor(model.topology.triangles, device=model.device)

    def set_part_weights(self, part_weights: dict[str, float]) -> None:
        """Weight per part (missing parts: 1), zero for a frame where the target lacks the part."""
        base = torch.tensor([float(part_weights.get(p, 1.0)) for p in PART_NAMES])
        self.weights = [base * t.present.cpu() for t in self.targets]  # (P,) per frame

    def configure(self, stage: dict) -> None:
        """A stage's ``prdl_part_weights`` replace the named parts' weights of ``[prdl] part_weights`` for it."""
        self.set_part_weights({**self.part_weights, **dict(stage.get("prdl_part_weights", {}))})

    @torch.no_grad()
    def crop_raster(self, scene: Scene, frame: int = 0):
        """Fragments of the frame's mesh rasterised over its crop at ``raster_size``."""
        cam = scene.camera_vertices()[frame : frame + 1]
        crop = self.targets[frame].crop
        small = FitCrop(crop.x0, crop.y0, crop.side, self.raster_size)
        return rasterize(cam, self.model.topology.triangles, small.K(scene.K()[frame : frame + 1]),
                         (self.raster_size, self.raster_size))

    @torch.no_grad()
    def visible_vertices(self, scene: Scene, frame: int = 0) -> np.ndarray:
        """(V,) bool: vertices of a triangle seen in a raster of the frame's crop, and facing the camera."""
        topo = self.model.topology
        cam = scene.camera_vertices()[frame : frame + 1]
        frags = self.crop_raster(scene, frame)
        seen = torch.zeros(len(topo.triangles), dtype=torch.bool)
        seen[frags.pix_triangle.cpu()] = True
        visible = np.zeros(topo.num_vertices, bool)
        visible[topo.triangles[seen.numpy()].reshape(-1)] = True
        normals = vertex_normals(cam, self.triangles)[0]
        facing = ((normals * cam[0]).sum(-1) < 0).cpu().numpy()
        return visible & facing

    @torch.no_grad()
    def surface_samples(self, scene: Scene, frame: int, rng: np.random.Generator) -> None:
        """Append the frame's surface points: per part at most ``max_points`` of the pixels it covers in the crop
        raster (a uniform random subset), each as the corners of its triangle and its barycentrics."""
        frags = self.crop_raster(scene, frame)
        labels = render_labels(frags, self.model.topology.vertex_labels["parts"], len(PART_NAMES) + 1,
                               soft=False).reshape(-1)[frags.pix_index].cpu().numpy()
        flat = frags.pix_index.cpu().numpy() % (self.raster_size * self.raster_size)
        centres = np.stack([flat % self.raster_size, flat // self.raster_size], 1) + 0.5
        centres *= self.targets[frame].crop.size / self.raster_size  # crop pixels
        chosen, segments, start = [], [], 0
        for k, part in enumerate(PART_NAMES):
            keep = labels == k + 1
            if part == "skin":
                keep &= below_line(centres, self.targets[frame].brow_line)
            pixels = np.flatnonzero(keep)
            if len(pixels) > self.max_points:
                pixels = np.sort(rng.choice(pixels, self.max_points, replace=False))
            chosen.append(pixels)
            segments.append((start, start + len(pixels)))
            start += len(pixels)
        pixels = torch.as_tensor(np.concatenate(chosen), dtype=torch.long, device=frags.pix_triangle.device)
        corners = self.triangles[frags.pix_triangle[pixels].to(self.triangles.device)]
        unique, inverse = torch.unique(corners.reshape(-1), return_inverse=True)  # evaluate shared corners once
        self.index.append(unique.to(scene.state.device))
        self.corners.append(inverse.reshape(-1, 3).to(scene.state.device))
        self.bary.append(frags.pix_bary.detach()[pixels].to(scene.state.device))
        self.segments.append(segments)

    @torch.no_grad()
    def update(self, scene: Scene) -> None:
        """Re-select each frame's point set of each part (between optimiser rounds)."""
        self.index, self.segments, self.bary, self.corners = [], [], [], []
        for frame, rng in enumerate(self.rngs):
            if self.points == "surface":
                self.surface_samples(scene, frame, rng)
                continue
            visible = self.visible_vertices(scene, frame)
            chosen, segments, start = [], [], 0
            for part, verts in zip(PART_NAMES, self.part_vertices):
                v = verts[visible[verts]]
                if part == "skin" and self.targets[frame].brow_line is not None:
                    pix, _ = scene.project(scene.vertices_at(torch.as_tensor(v, device=scene.state.device)))
                    crop_pts = self.targets[frame].crop.to_crop(pix[frame]).cpu().numpy()
                    v = v[below_line(crop_pts, self.targets[frame].brow_line)]
                if len(v) > self.max_points:
                    v = np.sort(rng.choice(v, self.max_points, replace=False))
                chosen.append(v)
                segments.append((start, start + len(v)))
                start += len(v)
            self.index.append(torch.as_tensor(np.concatenate(chosen), device=scene.state.device))
            self.segments.append(segments)
        self.union, self.local = None, []
        self.generation += 1
        if len(self.index) > 1:  # one evaluation of the union serves every frame (see frame_pixels)
            self.union, inverse = torch.unique(torch.cat(self.index), return_inverse=True)
            self.local = list(inverse.split([len(i) for i in self.index]))

    def predicted_points(self, scene: Scene, frame: int = 0) -> torch.Tensor:
        """Model-frame points (F, n, 3) of the frame's point sets (every frame's pose applies to them), in the
        order of its ``segments``."""
        if self.index is None:
            self.update(scene)
        return self.on_surface(scene.vertices_at(self.index[frame]), frame)

    def on_surface(self, points: torch.Tensor, frame: int) -> torch.Tensor:
        """The frame's index points (..., n, 3) -> its point sets: with surface points, each triangle's corners
        -> the fixed surface point inside it (..., M, 3); vertices as they are."""
        if self.points != "surface":
            return points
        return (points[..., self.corners[frame], :] * self.bary[frame][:, :, None]).sum(-2)

    def frame_pixels(self, scene: Scene, frame: int = 0) -> torch.Tensor:
        """Image pixels (n, 2) of the frame's point sets, seen in that frame only.

        With several frames (a clip's keyframes), the union of their vertices is evaluated and posed once per
        scene and each frame takes its own: evaluating every frame's subset at every instant cost frames^2
        subset evaluations, and as many basis gathers as frames, more than the cache holds. A surface point is
        interpolated in camera space, the same point as in the model frame (a rigid map keeps barycentrics)."""
        if self.index is None:
            self.update(scene)
        if self.union is None:
            pix, _ = scene.project(self.predicted_points(scene, frame))
            return pix[frame]
        key = ("prdl-union", id(self), self.generation)
        cam = scene.memo(key, lambda: scene.to_camera(scene.vertices_at(self.union)))
        points = self.on_surface(cam[frame, self.local[frame]], frame)
        return project(points[None], scene.K()[frame : frame + 1])[0]

    def predicted_stats(self, scene: Scene, frame: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, A, 3) statistics of the frame's projected point sets, and (P,) bool: the part has some."""
        targets = self.targets[frame]
        crop_pts = targets.crop.to_crop(self.frame_pixels(scene, frame))
        segments = self.segments[frame]
        stats = part_distance_stats(targets.anchors, crop_pts, segments, self.soft) / targets.crop.size
        return stats, torch.tensor([end > start for start, end in segments])

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
                    max_points=int(cfg["max_points"]), raster_size=int(cfg["raster_size"]), points=str(cfg["points"]))


SPEC = register(TermSpec(
    "prdl", build, needs=("masks",),
    settings={
        "grid": Setting("int", "anchors per side of the crop", low=2),
        "sigma": Setting("float", "statistics noise as a fraction of the crop side", positive=True),
        "soft": Setting("float", "soft-min/max temperature (fraction of the crop side); 0 = hard", low=0),
        "skin_points": Setting("int", "skin target points after farthest-point sampling", low=1),
        "part_points": Setting("int", "other parts' target points", low=1),
        "max_points": Setting("int", "predicted points per part (surface samples or visible vertices)", low=1),
        "points": Setting("str", "predicted points: rendered part pixels as surface points, or visible vertices",
                          choices=POINT_MODES),
        "raster_size": Setting("int", "visibility raster of the crop (pixels)", low=16),
        "part_weights": Setting("table", "weight per part", low=0, choices=PART_NAMES),
    },
    stage_settings={"prdl_part_weights": Setting("table", "this stage's weight per part (others: [prdl] "
                                                          "part_weights)", low=0, choices=PART_NAMES)},
    doc="part segmentation compared through distance statistics from grid anchors"))

"""Landmark reprojection: observed 2D landmarks against projected model surface points.

Landmarks of either format are surface embeddings on the model (MediaPipe's 478 by barycentric embedding,
iBUG 68 by vertex). Residuals are measured in units of ``sigma`` times the face size, so one weight works at
every image resolution, and pass through a robust pseudo-Huber loss. Two mechanisms handle turned faces:
- visibility weights: a landmark whose surface faces away from the camera is down-weighted (the detector
  hallucinates occluded points, the model surface there is not what was seen);
- sliding contour: a contour landmark (iBUG jawline) is matched to whichever of its candidate vertices
  projects closest to it (chosen between optimiser rounds), so the jaw follows the silhouette.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..common.settings import Setting
from ..model.contour import contour_candidates
from ..model.morphable import MorphableModel
from ..model.topology import SurfaceEmbedding
from ..scene import Scene
from .base import Term, TermContext, TermSpec, pseudo_huber, register
from .landmark_modes import face_rotation, image_modes, suppression, whiten


@dataclass
class LandmarkTargets:
    """Observed landmarks of F frames in one format."""

    points: torch.Tensor  # (F, N, 2) pixels
    weights: torch.Tensor  # (F, N) confidence in [0, 1]
    landmark_format: str

    def face_size(self) -> torch.Tensor:
        """Per-frame face scale in pixels: sqrt of the area of the landmarks' bounding box."""
        w = self.weights > 0
        big = torch.finfo(self.points.dtype).max
        lo = torch.where(w[..., None], self.points, torch.full_like(self.points, big)).amin(1)
        hi = torch.where(w[..., None], self.points, torch.full_like(self.points, -big)).amax(1)
        return ((hi - lo).clamp(min=1.0).prod(-1)).sqrt()


def landmark_embedding(model: MorphableModel, landmark_format: str) -> SurfaceEmbedding:
    """The model surface points that correspond to a landmark format."""
    topo = model.topology
    if landmark_format == "mediapipe478":
        if "mediapipe478" not in topo.embeddings:
            raise RuntimeError(
                f"model {model.name!r} has no MediaPipe landmark embedding; use --landmarks fan or a model "
                "with an embedding (assets/build/build_mediapipe_embedding.py makes ICT's)"
            )
        return topo.embeddings["mediapipe478"]
    if landmark_format == "ibug68":
        if "ibug68" in topo.embeddings:  # a barycentric embedding (e.g. FLAME's) beats nearest vertices
            return topo.embeddings["ibug68"]
        if topo.landmarks68 is None:
            raise RuntimeError(f"model {model.name!r} defines no 68 iBUG landmark vertices")
        return vertex_embedding(topo.triangles, topo.landmarks68)
    raise ValueError(f"unknown landmark format {landmark_format!r}")


def vertex_embedding(triangles: np.ndarray, vertices: np.ndarray) -> SurfaceEmbedding:
    """Embed vertices as surface points: one incident triangle each, barycentric weight 1 on the vertex."""
    tri_ids = np.empty(len(vertices), np.int64)
    bary = np.zeros((len(vertices), 3), np.float32)
    for k, v in enumerate(vertices):
        rows, cols = np.nonzero(triangles == v)
        if len(rows) == 0:
            raise ValueError(f"vertex {v} belongs to no triangle")
        tri_ids[k] = rows[0]
        bary[k, cols[0]] = 1.0
    return SurfaceEmbedding(tri_ids, bary)


class LandmarkTerm(Term):
    """sum_i w_i * rho(|proj(p_i) - l_i| / (sigma * face_size)) per frame."""

    name = "landmarks"

    def __init__(
        self,
        model: MorphableModel,
        targets: LandmarkTargets,
        sigma: float = 0.01,
        robust_delta: float = 3.0,
        visibility: bool = True,
        contour_candidates: dict[int, np.ndarray] | None = None,
        reliability: bool = True,
        visibility_offset: float = 0.05,
        visibility_width: float = 0.15,
        error_modes: int = 0,
    ) -> None:
        self.model = model
        self.targets = targets
        self.sigma = sigma
        self.delta = robust_delta
        self.visibility = visibility
        self.visibility_offset = visibility_offset
        self.visibility_width = visibility_width
        emb = landmark_embedding(model, targets.landmark_format)
        if reliability and emb.reliability is not None:  # calibrated per-landmark noise of the detector
            rel = torch.as_tensor(emb.reliability, dtype=targets.weights.dtype, device=targets.weights.device)
            targets = LandmarkTargets(targets.points, targets.weights * rel, targets.landmark_format)
            self.targets = targets
        self.triangles = torch.as_tensor(model.topology.triangles[emb.triangles], device=targets.points.device)
        self.barycentrics = torch.as_tensor(emb.barycentrics, device=targets.points.device)
        self.scale = targets.face_size() * sigma  # (F,)
        # Sliding contour: per landmark index, candidate vertices; the chosen one per frame replaces it.
        self.contour = {int(k): torch.as_tensor(np.asarray(v), device=targets.points.device)
                        for k, v in (contour_candidates or {}).items()}
        self.chosen: dict[int, torch.Tensor] = {}
        # The detector's shared error modes, whitened out of the residual (docs/fitting.md "The detector's errors
        # move together"); the targets are fixed, so each frame's map is fixed too.
        self.modes = self.strength = None
        measured = emb.error_modes  # measured for MediaPipe's points; other formats fit unwhitened
        if error_modes > 0 and measured is not None:
            if error_modes >= measured.basis.shape[1]:
                raise ValueError(f"landmarks.error_modes = {error_modes}: at most {measured.basis.shape[1] - 1} "
                                 "modes are measured (assets/build/build_landmark_modes.py)")
            dtype, device = targets.points.dtype, targets.points.device
            basis = torch.as_tensor(measured.basis[:, :error_modes], dtype=dtype, device=device)
            self.modes = image_modes(basis, face_rotation(targets.points))
            variances = torch.as_tensor(measured.variances[:error_modes], dtype=dtype, device=device)
            self.strength = suppression(variances, measured.floor(error_modes))

    # -- geometry ----------------------------------------------------------------------------------------
    def surface_points(self, scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
        """Landmark points (F, N, 3) and their triangle normals (F, N, 3), model frame."""
        unique, inverse = torch.unique(self.triangles, return_inverse=True)
        corners = scene.vertices_at(unique)[:, inverse]  # (F, N, 3, 3)
        points = (corners * self.barycentrics[None, :, :, None]).sum(2)
        normals = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
        if self.chosen:
            idx = torch.tensor(list(self.chosen), device=points.device)
            ids = torch.stack([self.chosen[int(i)] for i in idx], 1)  # (F, C) vertex id per frame
            frames = points.shape[0]
            every = scene.vertices_at(ids.reshape(-1)).reshape(frames, frames, -1, 3)  # all frames' picks
            own = torch.diagonal(every, dim1=0, dim2=1).permute(2, 0, 1)  # (F, C, 3): each frame its own
            points = points.index_copy(1, idx, own)
        return points, normals

    @torch.no_grad()
    def update(self, scene: Scene) -> None:
        """Pick, per frame, the candidate vertex of each contour landmark that projects nearest to it."""
        if not self.contour:
            return
        self.chosen = {}
        for k, cand in self.contour.items():
            pix, _ = scene.project(scene.vertices_at(cand))  # (F, C, 2)
            d = (pix - self.targets.points[:, k : k + 1]).norm(dim=-1)
            self.chosen[k] = cand[d.argmin(dim=1)]

    @torch.no_grad()
    def visibility_weights(self, scene: Scene, points: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        """1 for landmarks on surfaces facing the camera, falling to 0 for surfaces seen edge-on or from behind."""
        cam_p = scene.to_camera(points)
        cam_n = scene.to_camera(normals + points) - cam_p
        facing = -(cam_n * cam_p).sum(-1) / (cam_n.norm(dim=-1) * cam_p.norm(dim=-1)).clamp(min=1e-9)
        return ((facing + self.visibility_offset) / self.visibility_width).clamp(0.0, 1.0)

    # -- energy ------------------------------------------------------------------------------------------
    def residuals(self, scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel residuals (F, N, 2) and effective weights (F, N)."""
        points, normals = self.surface_points(scene)
        pix, _ = scene.project(points)
        weights = self.targets.weights
        if self.visibility:
            vis = self.visibility_weights(scene, points, normals)
            if self.chosen:  # contour landmarks sit on the silhouette by construction
                vis[:, list(self.chosen)] = 1.0
            weights = weights * vis
        return pix - self.targets.points, weights

    def __call__(self, scene: Scene) -> torch.Tensor:
        res, w = self.residuals(scene)
        if self.modes is not None:  # points without weight take no part in the modes
            res = whiten(res * (w > 0)[..., None].to(res.dtype), self.modes, self.strength)
        x = res.norm(dim=-1) / self.scale[:, None]
        return (w * pseudo_huber(x, self.delta)).sum(-1)

    @torch.no_grad()
    def rmse_px(self, scene: Scene) -> torch.Tensor:
        """Per-frame RMSE in pixels over landmarks with non-zero detector weight (F,)."""
        res, _ = self.residuals(scene)
        w = (self.targets.weights > 0).float()
        return ((res.pow(2).sum(-1) * w).sum(-1) / w.sum(-1).clamp(min=1)).sqrt()


def build(ctx: TermContext) -> LandmarkTerm:
    cfg = ctx.section("landmarks")
    fmt = ctx.evidence.landmark_format
    points, weights = ctx.evidence.landmarks()
    targets = LandmarkTargets(torch.as_tensor(points, device=ctx.device), torch.as_tensor(weights, device=ctx.device),
                              fmt)
    candidates = contour_candidates(ctx.model, fmt) if cfg["contour"] == "slide" else None
    return LandmarkTerm(ctx.model, targets, sigma=float(cfg["sigma"]), robust_delta=float(cfg["robust_delta"]),
                        visibility=bool(cfg["visibility"]), contour_candidates=candidates,
                        reliability=bool(cfg["reliability"]), visibility_offset=float(cfg["visibility_offset"]),
                        visibility_width=float(cfg["visibility_width"]), error_modes=int(cfg["error_modes"]))


SPEC = register(TermSpec(
    "landmarks", build,
    settings={
        "sigma": Setting("float", "landmark noise as a fraction of the face size", positive=True),
        "robust_delta": Setting("float", "pseudo-Huber knee in units of sigma", positive=True),
        "visibility": Setting("bool", "down-weight landmarks on surfaces facing away"),
        "visibility_offset": Setting("float", "facing cosine below zero where the weight reaches 0", low=0, high=1),
        "visibility_width": Setting("float", "facing-cosine ramp from weight 0 to 1", positive=True),
        "contour": Setting("str", "jawline landmarks slide along the silhouette or stay fixed",
                           choices=("slide", "fixed")),
        "reliability": Setting("bool", "weigh each landmark by its calibrated detector noise"),
        "error_modes": Setting("int", "MediaPipe's shared error modes whitened out of the residual (0: none; "
                               "other landmark formats are not whitened)",
                               low=0, high=63),
    },
    doc="observed 2D landmarks against the projected model landmarks"))

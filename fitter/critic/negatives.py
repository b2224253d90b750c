"""Wrong geometries for a photo (the critic's negatives), each labelled with how wrong it is in millimetres.

A negative is shown with the same photo as the truth, so the critic must learn what differs between them: the
shape. Kinds (the recipe's mixture names them):

- ``landmark_preserving``: a random identity/expression change projected into the null space of the 68
  landmarks' Jacobian (with pose free to compensate), so the landmarks cannot tell it from the truth — the
  error a landmark fitter cannot see and the critic must;
- ``random``: another identity (partly or wholly), another expression (random, permuted, zeroed) or the jaw
  moved;
- ``pose``: the true shape slightly rotated or shifted sideways (misaligned shading and outline);
- ``depth``: identity directions that change depth and barely move anything in the image plane (the
  ambiguity a single view leaves);
- ``swap``: the identity of another photo of the pool;
- mined negatives (the fitter's own wrong answers, geometry found by descending the critic) come from
  fitter.bench.critic (they need the fitter) and carry their own labels.

Labels: the Procrustes error of the face region (mm, as the synthetic benchmark measures shape) for shape
changes; for ``pose``, whose shape is exact, the mean camera-space vertex distance (mm) — how far the surface
the photo shows is from where the render puts it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..camera import MODEL_TO_OPENCV, model_to_camera, project
from ..metrics import MM_PER_CM, procrustes_error
from ..model.morphable import MorphableModel
from .pool import Geometry, PoolPhoto, intrinsics_of

REGION = "face"  # labels measure the face region, as `facefit bench synthetic` does
KINDS = ("landmark_preserving", "random", "pose", "depth", "swap")
JAW = "jawOpen"


@dataclass(frozen=True)
class Ranges:
    """How far each kind moves the face (uniform ranges)."""

    # landmark-preserving: draws from the posterior of a linearised fit of the 68 true landmarks under the
    # model's priors, with landmark noise of this fraction of the landmark box side ...
    landmark_sigma: tuple[float, float] = (0.002, 0.01)
    posterior_spread: tuple[float, float] = (0.7, 1.5)  # ... and the draw's spread scaled by this
    expression_sigma: float = 0.5  # the expression prior's scale (the presets' [expression_prior] sigma)
    pose_precision: float = 1e-4  # pose is all but free (it compensates what the shape change moves)
    depth_turn_deg: tuple[float, float] = (15.0, 90.0)  # depth: turn of the depth-subspace component
    identity_turn_deg: tuple[float, float] = (10.0, 90.0)  # turn towards a random identity (keeps N(0, 1))
    jaw: tuple[float, float] = (0.05, 0.35)  # jawOpen change
    rotation_deg: tuple[float, float] = (0.5, 4.0)  # pose: rotation about a random axis
    shift_mm: tuple[float, float] = (0.5, 4.0)  # pose: sideways shift (camera x, y)
    depth_modes: int = 8  # identity directions with the most depth change per unit of image-plane motion
    active_expression: float = 0.02  # landmark-preserving: expressions at least this active may change


class NegativeSampler:
    """Draws labelled wrong geometries for pool photos (per-photo null spaces are computed once and kept)."""

    def __init__(self, model: MorphableModel, ranges: Ranges = Ranges(), label_stride: int = 1) -> None:
        """``label_stride`` > 1 measures labels on every n-th face-region vertex (training: labels are many and
        need not be exact; the eval measures on all of them, as the benchmark does)."""
        self.model = model
        self.ranges = ranges
        self.region = model.topology.region(REGION)
        cols = torch.as_tensor((np.flatnonzero(self.region)[::label_stride, None] * 3 + np.arange(3)).reshape(-1))
        self._region_mean = model.mean.reshape(-1)[cols].cpu().numpy()
        self._region_identity = model.identity_basis[:, cols].cpu().numpy()
        self._region_expression = model.expression_basis[:, cols].cpu().numpy()
        self.jaw = model.expression_names.index(JAW) if JAW in model.expression_names else None
        self.depth_directions = depth_directions(model, self.region, ranges.depth_modes)
        self._jacobians: dict[tuple[int, int], np.ndarray] = {}

    # -- labels ----------------------------------------------------------------------------------------
    def region_vertices(self, g: Geometry) -> np.ndarray:
        """Camera-frame face-region vertices (N, 3) of a geometry."""
        v = (self._region_mean + g.identity.astype(np.float32) @ self._region_identity
             + g.expression.astype(np.float32) @ self._region_expression).reshape(-1, 3).astype(np.float64)
        R = Rotation.from_rotvec(np.asarray(g.rotation, np.float64)).as_matrix() @ MODEL_TO_OPENCV.numpy()
        return v @ R.T + np.asarray(g.translation, np.float64)

    def shape_error_mm(self, g: Geometry, truth: Geometry) -> float:
        return procrustes_error(self.region_vertices(g), self.region_vertices(truth)) * MM_PER_CM

    def surface_error_mm(self, g: Geometry, truth: Geometry) -> float:
        d = self.region_vertices(g) - self.region_vertices(truth)
        return float(np.linalg.norm(d, axis=1).mean() * MM_PER_CM)

    # -- kinds -----------------------------------------------------------------------------------------
    def sample(self, photo: PoolPhoto, kind: str, rng: np.random.Generator,
               others: list[PoolPhoto] | None = None) -> tuple[Geometry, float]:
        """A negative of ``kind`` for ``photo`` and its error label (mm)."""
        truth = photo.truth
        if kind == "landmark_preserving":
            g = self.apply(truth, self.posterior_step(photo, rng), 1.0)
            return g, self.shape_error_mm(g, truth)
        if kind == "depth":
            # turn the identity's component in the depth subspace towards a fresh N(0, 1) draw: the new
            # identity is as typical as the truth (no cue in how unusual the face is)
            D = self.depth_directions
            c = D.T @ truth.identity
            turn = np.radians(rng.uniform(*self.ranges.depth_turn_deg))
            c_new = np.cos(turn) * c + np.sin(turn) * rng.standard_normal(len(c))
            g = truth.replace(identity=(truth.identity + D @ (c_new - c)).astype(np.float32))
            return g, self.shape_error_mm(g, truth)
        if kind == "random":
            g = self.random_change(truth, rng)
        elif kind == "pose":
            g = self.pose_change(truth, rng)
            return g, self.surface_error_mm(g, truth)
        elif kind == "swap":
            pool = [p for p in (others or []) if p is not photo]
            if not pool:
                return self.sample(photo, "random", rng)
            g = truth.replace(identity=pool[int(rng.integers(len(pool)))].truth.identity.copy())
        else:
            raise ValueError(f"unknown negative kind {kind!r}; choose one of {', '.join(KINDS)}")
        return g, self.shape_error_mm(g, truth)

    def random_change(self, truth: Geometry, rng: np.random.Generator) -> Geometry:
        """Another identity, another expression, or both; or the jaw moved."""
        r = self.ranges
        what = rng.choice(["identity", "expression", "both", "jaw"])
        identity, expression = truth.identity.copy(), truth.expression.copy()
        if what in ("identity", "both"):  # a turn in coefficient space keeps identities distributed as N(0, 1)
            turn = np.radians(rng.uniform(*r.identity_turn_deg))
            identity = np.cos(turn) * identity + np.sin(turn) * rng.standard_normal(len(identity))
        if what in ("expression", "both"):
            how = rng.choice(["random", "permuted", "zeroed"])
            if how == "random":
                expression = random_expression(self.model, rng)
            elif how == "permuted":
                expression = expression[rng.permutation(len(expression))]
            else:
                expression = np.zeros_like(expression)
        if what == "jaw" and self.jaw is not None:
            step = rng.uniform(*r.jaw) * rng.choice([-1.0, 1.0])
            expression[self.jaw] = np.clip(expression[self.jaw] + step, 0.0, 1.0)
            if expression[self.jaw] == truth.expression[self.jaw]:  # clipped back: move the other way
                expression[self.jaw] = np.clip(expression[self.jaw] - step, 0.0, 1.0)
        return truth.replace(identity=identity.astype(np.float32), expression=self._bounded(expression))

    def pose_change(self, truth: Geometry, rng: np.random.Generator) -> Geometry:
        """The true shape rotated about a random axis through the head and/or shifted sideways."""
        r = self.ranges
        rotation, translation = truth.rotation.astype(np.float64), truth.translation.astype(np.float64)
        what = rng.choice(["rotate", "shift", "both"])
        if what in ("rotate", "both"):
            axis = rng.standard_normal(3)
            delta = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(rng.uniform(*r.rotation_deg)))
            rotation = (delta * Rotation.from_rotvec(rotation)).as_rotvec()
            # rotate about the head's centre (its mean vertex), not the model origin: keep the centre in place
            centre = self.region_vertices(truth).mean(0)
            moved = self.region_vertices(truth.replace(rotation=rotation.astype(np.float32))).mean(0)
            translation = translation + (centre - moved)
        if what in ("shift", "both"):
            angle = rng.uniform(0, 2 * np.pi)
            shift = rng.uniform(*r.shift_mm) / MM_PER_CM
            translation = translation + shift * np.array([np.cos(angle), np.sin(angle), 0.0])
        return truth.replace(rotation=rotation.astype(np.float32), translation=translation.astype(np.float32))

    # -- landmark-preserving changes -------------------------------------------------------------------
    def jacobian(self, photo: PoolPhoto) -> np.ndarray:
        """(136, P) Jacobian of the photo's 68 true landmark pixels (kept per photo)."""
        key = (photo.seed, photo.index)
        if key not in self._jacobians:
            self._jacobians[key] = landmark_jacobian(self.model, photo.truth, photo.image_size)
        return self._jacobians[key]

    def posterior_step(self, photo: PoolPhoto, rng: np.random.Generator) -> np.ndarray:
        """A parameter step (P,) drawn from the Laplace posterior of a linearised fit of the 68 true landmarks
        (noise ``landmark_sigma`` of the box side) under the model's priors, around its MAP.

        The draw keeps the landmarks within about that noise, moves the face along what the landmarks leave
        open, and is as typical under the priors as the truth (the MAP shrinks towards the mean, the spread
        restores it), so the critic cannot tell the negative by how unusual the face is."""
        r = self.ranges
        n_id, n_ex = self.model.num_identity, self.model.num_expression
        J = self.jacobian(photo)
        side = float(np.ptp(photo.landmarks, 0).max())
        sigma = rng.uniform(*r.landmark_sigma) * side
        # inactive expressions stay at zero (a draw around zero would be half clipped by the range, moving
        # the landmarks and making the face busier than the truth)
        active = np.flatnonzero(photo.truth.expression >= r.active_expression)
        free = np.r_[np.arange(n_id), n_id + active, np.arange(n_id + n_ex, n_id + n_ex + 6)]
        precision = np.r_[np.ones(n_id), np.full(len(active), r.expression_sigma**-2), np.full(6, r.pose_precision)]
        Jf = J[:, free]
        H = Jf.T @ Jf / sigma**2 + np.diag(precision)
        centre = np.r_[photo.truth.identity, photo.truth.expression[active] * r.expression_sigma**-2, np.zeros(6)]
        chol = np.linalg.cholesky(H)
        shift = np.linalg.solve(chol.T, np.linalg.solve(chol, -centre))  # MAP - truth
        spread = np.linalg.solve(chol.T, rng.standard_normal(len(free)))  # ~ N(0, H^-1)
        step = np.zeros(J.shape[1])
        step[free] = shift + rng.uniform(*r.posterior_spread) * spread
        return step

    def apply(self, truth: Geometry, step: np.ndarray, scale: float) -> Geometry:
        n_id, n_ex = self.model.num_identity, self.model.num_expression
        s = step * scale
        return truth.replace(identity=(truth.identity + s[:n_id]).astype(np.float32),
                             expression=self._bounded(truth.expression + s[n_id:n_id + n_ex]),
                             rotation=(truth.rotation + s[n_id + n_ex:n_id + n_ex + 3]).astype(np.float32),
                             translation=(truth.translation + s[n_id + n_ex + 3:]).astype(np.float32))

    def _bounded(self, expression: np.ndarray) -> np.ndarray:
        bounds = self.model.expression_bounds
        out = np.clip(expression, *bounds) if bounds is not None else expression
        return out.astype(np.float32)


def parameters(g: Geometry) -> np.ndarray:
    """(P,) identity, expression, rotation and translation of a geometry in one vector (the Jacobian's order)."""
    return np.concatenate([g.identity, g.expression, g.rotation, g.translation]).astype(np.float64)


def landmark_jacobian(model: MorphableModel, truth: Geometry, image_size: tuple[int, int]) -> np.ndarray:
    """(136, P) Jacobian of the 68 landmark pixels w.r.t. (identity, expression, rotation, translation)."""
    index = torch.as_tensor(model.topology.landmarks68, device=model.device)
    K = intrinsics_of([truth], [image_size]).to(model.device)
    n_id, n_ex = model.num_identity, model.num_expression

    def pixels(params: torch.Tensor) -> torch.Tensor:
        ident, expr = params[:n_id], params[n_id:n_id + n_ex]
        rot, trans = params[n_id + n_ex:n_id + n_ex + 3], params[n_id + n_ex + 3:]
        v = model.vertices_subset(index, ident[None], expr[None])
        return project(model_to_camera(v, rot[None], trans[None]), K).reshape(-1)

    x = torch.as_tensor(parameters(truth), dtype=torch.float32, device=model.device)
    return torch.autograd.functional.jacobian(pixels, x, vectorize=True).cpu().numpy().astype(np.float64)


def depth_directions(model: MorphableModel, region: np.ndarray, modes: int) -> np.ndarray:
    """(K_id, modes) orthonormal basis of the identity directions that move the face region most in depth
    (model z) per unit of image-plane (model x, y) motion: the top generalized eigenvectors of
    (B_z^T B_z, B_xy^T B_xy)."""
    basis = model.identity_basis.reshape(model.num_identity, -1, 3)[:, torch.as_tensor(region)].cpu().numpy()
    bz = basis[..., 2].reshape(len(basis), -1).astype(np.float64)
    bxy = basis[..., :2].reshape(len(basis), -1).astype(np.float64)
    a, b = bz @ bz.T, bxy @ bxy.T + 1e-6 * np.eye(len(basis))
    chol = np.linalg.cholesky(b)
    inv = np.linalg.inv(chol)
    values, vectors = np.linalg.eigh(inv @ a @ inv.T)
    directions = inv.T @ vectors[:, ::-1][:, :modes]
    return np.linalg.qr(directions)[0]  # an orthonormal basis of their span


def random_expression(model: MorphableModel, rng: np.random.Generator) -> np.ndarray:
    """A random expression in the style of the synthetic cases: a few small activations, one to three big."""
    e = np.zeros(model.num_expression, np.float32)
    small = rng.choice(model.num_expression, size=rng.integers(2, 7), replace=False)
    e[small] = rng.uniform(0.0, 0.35, len(small))
    big = rng.choice(model.num_expression, size=rng.integers(1, 4), replace=False)
    e[big] = rng.uniform(0.2, 1.0, len(big))
    return e

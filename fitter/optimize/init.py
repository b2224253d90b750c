"""Starting parameters from observations: the regressor's only job.

- Expression: MediaPipe's 52 blendshape scores mapped to the model's expressions by name.
- Pose: rotation from MediaPipe's facial transform when present, then a PnP solve on the landmarks.
- Identity (and expression): a regularised linear least-squares solve on the landmarks with the pose fixed,
  alternating with the pose solve (as eos does). The perspective projection is linearised by multiplying
  through by depth: f*X + (cx - u)*Z = 0 is linear in the vertex positions, hence in the coefficients.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..camera import MODEL_TO_OPENCV, matrix_to_axis_angle
from ..model.morphable import MorphableModel
from ..model.topology import SurfaceEmbedding
from ..state import FitState

_FLIP = MODEL_TO_OPENCV.numpy().astype(np.float64)


@dataclass
class InitSettings:
    rounds: int = 3  # pose / shape alternations
    identity_reg: float = 1.0  # weight of ||identity||^2 (in units of the landmark term)
    expression_reg: float = 4.0  # weight of ||expression - blendshape guess||^2
    sigma: float = 0.01  # landmark noise as a fraction of face size (as in LandmarkTerm)
    use_blendshapes: bool = True
    use_transform: bool = True


# -- expressions from blendshape scores ------------------------------------------------------------------
def blendshape_name_map(expression_names: list[str]) -> dict[str, list[int]]:
    """ARKit-style score name (``browDownLeft``) -> indices of the model's expressions (``browDown_L``).

    Names without a side that the model splits in two (``browInnerUp`` -> ``browInnerUp_L``/``_R``) feed both.
    """
    index = {n: i for i, n in enumerate(expression_names)}
    mapping: dict[str, list[int]] = {}
    for name in expression_names:
        if name.endswith("_L") or name.endswith("_R"):
            stem, side = name[:-2], ("Left" if name.endswith("_L") else "Right")
            mapping.setdefault(stem + side, []).append(index[name])
            mapping.setdefault(stem, []).append(index[name])
        else:
            mapping.setdefault(name, []).append(index[name])
    # a sided name maps only to its side; an unsided one only where the model has no unsided twin
    return {k: sorted(set(v)) for k, v in mapping.items() if not (k in index and len(v) > 1)}


def expression_from_blendshapes(scores: dict[str, float], expression_names: list[str]) -> np.ndarray:
    """Blendshape scores -> expression coefficients in [0, 1]; unknown names are ignored."""
    mapping = blendshape_name_map(expression_names)
    out = np.zeros(len(expression_names), np.float32)
    for name, value in scores.items():
        for i in mapping.get(name, []):
            out[i] = max(out[i], float(value))
    return np.clip(out, 0.0, 1.0)


# -- pose ------------------------------------------------------------------------------------------------
def rotation_from_mediapipe(transform: np.ndarray) -> np.ndarray:
    """Axis-angle in facefit's convention from MediaPipe's 4x4 facial transform.

    MediaPipe maps its canonical face (y up, face towards +z, like ICT) into an OpenGL camera (y up, looking
    down -z): X_gl = R_mp X. OpenCV's camera is X_cv = FLIP X_gl and facefit's pose is X_cv = R FLIP X, so
    R = FLIP R_mp FLIP.
    """
    r = np.asarray(transform, np.float64)[:3, :3]
    r = r / np.cbrt(np.linalg.det(r))  # drop any uniform scale
    u, _, vt = np.linalg.svd(r)
    return matrix_to_axis_angle(_FLIP @ (u @ vt) @ _FLIP)


def solve_translation(points: np.ndarray, pixels: np.ndarray, weights: np.ndarray, rotation: np.ndarray,
                      K: np.ndarray) -> np.ndarray:
    """Least-squares translation for fixed rotation: linear after multiplying the projection by depth."""
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec(rotation).as_matrix() @ _FLIP
    q = points @ r.T
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    du, dv = pixels[:, 0] - cx, pixels[:, 1] - cy
    zeros = np.zeros_like(du)
    a = np.concatenate([np.stack([-f + zeros, zeros, du], 1), np.stack([zeros, -f + zeros, dv], 1)])
    b = np.concatenate([f * q[:, 0] - du * q[:, 2], f * q[:, 1] - dv * q[:, 2]])
    w = np.sqrt(np.concatenate([weights, weights]))
    t, *_ = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)
    return t


def solve_pose(points: np.ndarray, pixels: np.ndarray, weights: np.ndarray, K: np.ndarray,
               rotation: np.ndarray | None = None, translation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PnP for model-frame points -> (axis-angle, translation) in facefit's convention (X_cam = R FLIP X + t)."""
    keep = weights > 0.5
    obj = (points[keep] @ _FLIP.T).astype(np.float64)
    img = pixels[keep].astype(np.float64)
    K64 = np.asarray(K, np.float64)
    if rotation is None:
        ok, rvec, tvec = cv2.solvePnP(obj, img, K64, None, flags=cv2.SOLVEPNP_EPNP)
        if not ok:
            raise RuntimeError("PnP failed on the landmarks")
    else:
        rvec = np.asarray(rotation, np.float64).reshape(3, 1)
        tvec = (translation if translation is not None
                else solve_translation(points, pixels, weights, rotation, K)).astype(np.float64).reshape(3, 1)
    ok, rvec, tvec = cv2.solvePnP(obj, img, K64, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if tvec[2, 0] <= 0:  # behind the camera: the PnP fell into the mirror solution
        raise RuntimeError("PnP put the face behind the camera")
    return rvec.reshape(3), tvec.reshape(3)


# -- shape -----------------------------------------------------------------------------------------------
def embedding_bases(model: MorphableModel, embedding: SurfaceEmbedding) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (N, 3), identity basis (N, 3, K_id), expression basis (N, 3, K_exp) at the embedded points."""
    corners = model.topology.triangles[embedding.triangles]  # (N, 3)
    bary = embedding.barycentrics.astype(np.float64)

    def at(flat: torch.Tensor) -> np.ndarray:  # (K, V*3) -> (N, 3, K)
        b = flat.detach().cpu().numpy().reshape(flat.shape[0], -1, 3)[:, corners]  # (K, N, 3c, 3)
        return np.einsum("knci,nc->nik", b, bary)

    mean = np.einsum("nci,nc->ni", model.mean.cpu().numpy()[corners], bary)
    return mean, at(model.identity_basis), at(model.expression_basis)


def solve_shape(mean: np.ndarray, id_basis: np.ndarray, ex_basis: np.ndarray, pixels: np.ndarray,
                weights: np.ndarray, rotation: np.ndarray, translation: np.ndarray, K: np.ndarray,
                current: np.ndarray, expression_guess: np.ndarray, settings: InitSettings,
                scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Regularised linear least squares for (identity, expression) with the pose fixed."""
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec(rotation).as_matrix() @ _FLIP
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    basis = np.concatenate([id_basis, ex_basis], axis=2)  # (N, 3, K)
    # depth of the current shape: dividing by it turns the linearised rows back into pixel residuals
    z = np.clip((current @ r.T + translation)[:, 2], 1e-3, None)
    rows, rhs = [], []
    for axis, c in ((0, cx), (1, cy)):
        d = pixels[:, axis] - c
        coef = f * r[axis][None, :] - d[:, None] * r[2][None, :]  # (N, 3): row applied to model point
        rows.append(np.einsum("ni,nik->nk", coef, basis))
        rhs.append(-(np.einsum("ni,ni->n", coef, mean) + f * translation[axis] - d * translation[2]))
    a = np.concatenate(rows) / np.concatenate([z, z])[:, None]
    b = np.concatenate(rhs) / np.concatenate([z, z])
    w = np.sqrt(np.concatenate([weights, weights])) / (settings.sigma * scale)
    a, b = a * w[:, None], b * w
    k_id = id_basis.shape[2]
    reg = np.concatenate([np.full(k_id, settings.identity_reg), np.full(ex_basis.shape[2], settings.expression_reg)])
    prior = np.concatenate([np.zeros(k_id), expression_guess])
    lhs = a.T @ a + np.diag(reg)
    x = np.linalg.solve(lhs, a.T @ b + reg * prior)
    return x[:k_id], np.clip(x[k_id:], 0.0, 1.0)


def initialise(
    model: MorphableModel,
    embedding: SurfaceEmbedding,
    pixels: np.ndarray,
    weights: np.ndarray,
    image_size: tuple[int, int],
    focal: float,
    blendshapes: dict[str, float] | None = None,
    transform: np.ndarray | None = None,
    settings: InitSettings | None = None,
    rotation: np.ndarray | None = None,
    fix_rotation: bool = False,
) -> FitState:
    """A FitState (one frame, one view) close enough for the gradient-based stages to take over.

    ``rotation``: a starting head rotation (axis-angle, facefit's convention) to use instead of the one from
    ``transform`` (e.g. read off the detector's 3D landmarks); with ``fix_rotation`` it is kept as it is and
    only the translation is solved for (the PnP would trade it against the shape)."""
    settings = settings or InitSettings()
    state = FitState.single(model.num_identity, model.num_expression, image_size, focal, device=model.device)
    K = state.K()[0].cpu().numpy().astype(np.float64)
    weights = np.asarray(weights, np.float64)
    pixels = np.asarray(pixels, np.float64)
    mean, id_basis, ex_basis = embedding_bases(model, embedding)
    expression = np.zeros(model.num_expression)
    if settings.use_blendshapes and blendshapes:
        expression = expression_from_blendshapes(blendshapes, model.expression_names).astype(np.float64)
    expression_guess = expression.copy()
    identity = np.zeros(model.num_identity)
    span = pixels[weights > 0].max(0) - pixels[weights > 0].min(0)
    scale = float(np.sqrt(max(span[0], 1) * max(span[1], 1)))

    def shape_points() -> np.ndarray:
        return mean + id_basis @ identity + ex_basis @ expression

    translation = None
    if rotation is not None:
        rotation = np.asarray(rotation, np.float64)
    elif settings.use_transform and transform is not None:
        rotation = rotation_from_mediapipe(transform)
    def pose(rotation, translation):
        if fix_rotation and rotation is not None:
            return rotation, solve_translation(shape_points(), pixels, weights, rotation, K)
        return solve_pose(shape_points(), pixels, weights, K, rotation, translation)

    for _ in range(settings.rounds):
        rotation, translation = pose(rotation, translation)
        identity, expression = solve_shape(mean, id_basis, ex_basis, pixels, weights, rotation, translation, K,
                                           shape_points(), expression_guess, settings, scale)
    rotation, translation = pose(rotation, translation)

    dev, dt = state.device, torch.float32
    state.identity = torch.tensor(identity, dtype=dt, device=dev)
    state.expression = torch.tensor(expression, dtype=dt, device=dev)[None]
    state.rotation = torch.tensor(rotation, dtype=dt, device=dev)[None]
    state.translation = torch.tensor(translation, dtype=dt, device=dev)[None]
    return state

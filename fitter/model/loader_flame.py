"""FLAME (MPI-IS) as a linear morphable model: ``generic_model.pkl`` / ``flame2023.pkl`` or an ``.npz`` with
the same keys.

Kept: ``v_template`` (metres -> cm), ``f``, and ``shapedirs`` split into identity (the first 300 columns) and
expression (the columns after 300). FLAME is already in facefit's frame (y up, the face towards +z), so no
rotation. FLAME's articulated part (jaw, neck and eyeball rotations by linear blend skinning: ``posedirs``,
``J_regressor``, ``weights``, ``kintree_table``) is not applied: the expression is the linear expression space
only. Those arrays are kept in ``model.extras`` for a later pose-aware model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from .loader_common import (
    ModelFormatError,
    as_float_array,
    as_index_array,
    assemble_model,
    check_uvs,
    mode_count,
    pad_polygons,
    read_landmarks68,
    read_npz_arrays,
    read_obj_faces,
    require,
    unit_scale,
)
from .loader_pickle import PICKLE_ERRORS, load_legacy_pickle, load_pickled_npy
from .morphable import MorphableModel

FLAME_SHAPE_MODES = 300  # shapedirs[..., :300] are identity, the rest expression, in every FLAME release
POSE_WARNING = (
    "FLAME: expression is FLAME's linear expression space only; jaw, neck and eyeball rotations (FLAME's "
    "linear-blend-skinning pose) are ignored, so the jaw opens only as far as the linear expression modes move it"
)
# FLAME_masks.pkl names -> facefit region names (others keep their own name).
MASK_NAMES = {"left_eyeball": "eyeball_left", "right_eyeball": "eyeball_right"}
EXTRA_KEYS = ("posedirs", "J_regressor", "kintree_table", "weights", "J", "lbs", "bs_style", "bs_type")


def _read(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".npz":
        # object arrays (e.g. a pickled sparse J_regressor) are skipped: only the skinning extras hold them
        return read_npz_arrays(path, skip_objects=True)
    try:
        data = load_legacy_pickle(path)
    except PICKLE_ERRORS as err:
        raise ModelFormatError(
            path, f"cannot unpickle this as a FLAME model ({err})",
            "give FLAME's generic_model.pkl (or flame2023.pkl) as downloaded from flame.is.tue.mpg.de",
        ) from None
    if not isinstance(data, dict):
        raise ModelFormatError(path, f"the pickle holds a {type(data).__name__}, expected FLAME's dict of arrays")
    return data


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"FLAME {what} file {path} does not exist")


def _read_side_file(path: Path, what: str, hint: str = "") -> Any:
    """The contents of one of FLAME's side files (UVs, masks, landmark embedding): an .npz as a dict of
    arrays, a .npy as the (possibly pickled) object it holds, anything else as a legacy pickle."""
    _require_file(path, what)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz_arrays(path, hint)
    try:
        return load_pickled_npy(path) if suffix == ".npy" else load_legacy_pickle(path)
    except PICKLE_ERRORS as err:
        raise ModelFormatError(path, f"cannot read the FLAME {what} file ({err})", hint) from None


def load_flame(
    path: str | Path,
    *,
    n_shape: int | str | None = 100,
    n_exp: int | str | None = 50,
    uv_path: str | Path | None = None,
    masks_path: str | Path | None = None,
    landmark_path: str | Path | None = None,
    landmarks68: Any = None,
    units: str = "m",
    device: str = "cpu",
) -> MorphableModel:
    """A FLAME model file as a MorphableModel in centimetres.

    n_shape / n_exp: how many identity (of 300) and expression (of 100) modes to keep; "all" (or None) keeps
    all.
    uv_path: FLAME's ``head_template.obj`` or ``FLAME_texture.npz`` (``vt``, ``ft``) for UVs.
    masks_path: ``FLAME_masks.pkl`` (vertex index lists per region) for regions.
    landmark_path: DECA's ``landmark_embedding.npy`` (``full_lmk_faces_idx``, ``full_lmk_bary_coords``) for the
    68 iBUG landmarks (embedding ``ibug68`` plus the nearest vertex of each as ``landmarks68``).
    landmarks68: 68 vertex indices (or a .npy/.txt file of them) instead.
    units: the file's length unit (FLAME's is metres).
    """
    path = Path(path)
    data = _read(path)
    expected = "give FLAME's generic_model.pkl or an .npz with the same keys"
    v_template = as_float_array(require(data, "v_template", path, "(V, 3) template vertices", expected),
                                "v_template", path, ndim=2)
    num_vertices = len(v_template)
    if v_template.shape[1] != 3:
        raise ModelFormatError(path, f"'v_template' has shape {v_template.shape}, expected (V, 3) (FLAME: 5023, 3)")
    faces = pad_polygons(require(data, "f", path, "(T, 3) triangles", expected), "f", path, num_vertices)
    if (faces[:, 3] >= 0).any():
        raise ModelFormatError(path, f"'f' has shape {faces.shape}; FLAME's faces are triangles (T, 3)")
    shapedirs = as_float_array(require(data, "shapedirs", path, "(V, 3, 400) shape and expression basis", expected),
                               "shapedirs", path, ndim=3)
    if shapedirs.shape[:2] != (num_vertices, 3) or shapedirs.shape[2] < FLAME_SHAPE_MODES:
        raise ModelFormatError(path, f"'shapedirs' has shape {shapedirs.shape}, expected ({num_vertices}, 3, K) "
                               f"with K >= {FLAME_SHAPE_MODES} (300 identity + expression modes; FLAME has 400)")
    n_id = mode_count(n_shape, FLAME_SHAPE_MODES, "n_shape", "identity", path)
    n_ex = mode_count(n_exp, shapedirs.shape[2] - FLAME_SHAPE_MODES, "n_exp", "expression", path)
    scale = unit_scale(units, path)

    warnings = [POSE_WARNING]
    if shapedirs.shape[2] == FLAME_SHAPE_MODES:
        warnings.append("FLAME: this file has no expression modes (shapedirs has 300 columns)")
    identity = np.moveaxis(shapedirs[..., :n_id], 2, 0) * scale
    expression = np.moveaxis(shapedirs[..., FLAME_SHAPE_MODES : FLAME_SHAPE_MODES + n_ex], 2, 0) * scale

    uvs = polygon_uvs = None
    if uv_path is not None:
        uvs, polygon_uvs = _read_uvs(Path(uv_path), faces)

    regions = _read_masks(Path(masks_path), num_vertices) if masks_path is not None else {}
    lm68 = read_landmarks68(landmarks68, num_vertices, path)
    embeddings = {}
    if landmark_path is not None:
        tri, bary = _read_landmark_embedding(Path(landmark_path), len(faces))
        embeddings["ibug68"] = (tri, bary)
        if lm68 is None:
            lm68 = faces[tri, np.argmax(bary, axis=1)].astype(np.int64)

    extras = _extras(data, scale)
    return assemble_model(
        path,
        fmt="flame",
        name=f"flame:{path.stem}",
        mean_cm=v_template * scale,
        identity_cm=identity,
        expression_cm=expression,
        polygons=faces,
        uvs=uvs,
        polygon_uvs=polygon_uvs,
        regions=regions,
        landmarks68=lm68,
        embeddings=embeddings,
        identity_names=[f"shape{i:03d}" for i in range(n_id)],
        expression_names=[f"exp{i:03d}" for i in range(n_ex)],
        warnings=warnings,
        source={"file_units": units, "scale_to_cm": scale, "pose_ignored": True,
                "shape_modes_in_file": FLAME_SHAPE_MODES,
                "expression_modes_in_file": shapedirs.shape[2] - FLAME_SHAPE_MODES},
        extras=extras,
        device=device,
    )


def _extras(data: dict, scale: float) -> dict[str, np.ndarray]:
    """FLAME's skinning data, kept as arrays (positions in cm) for a future pose-aware model."""
    out = {}
    for key in EXTRA_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if scipy.sparse.issparse(value):
            value = value.toarray()
        if isinstance(value, str):
            out[key] = value
            continue
        arr = np.asarray(value)
        if arr.dtype == object:
            continue
        if key in ("posedirs", "J"):
            arr = arr * scale
        out[key] = arr.astype(np.float32) if arr.dtype.kind == "f" else arr
    return out


def _read_uvs(uv_path: Path, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hint = "give FLAME_texture.npz or head_template.obj"
    if uv_path.suffix.lower() == ".obj":
        _require_file(uv_path, "UV")
        vt, fv, ft = read_obj_faces(uv_path)
        if fv.shape != (len(faces), 3) or not np.array_equal(fv, faces[:, :3]):
            raise ModelFormatError(uv_path, "the OBJ's faces are not FLAME's faces in the same order",
                                   "use the head_template.obj that ships with this FLAME version")
    else:
        data = _read_side_file(uv_path, "UV", hint)
        if not isinstance(data, dict):
            raise ModelFormatError(uv_path, "expected FLAME_texture.npz's arrays 'vt' and 'ft'", hint)
        vt = np.asarray(require(data, "vt", uv_path, "(U, 2) UVs", hint))
        ft = np.asarray(require(data, "ft", uv_path, "(T, 3) UV triangles", hint))
    if len(ft) != len(faces):
        raise ModelFormatError(uv_path, f"has {len(ft)} UV triangles but the model has {len(faces)} triangles",
                               "the UV file must belong to the same FLAME version")
    return check_uvs(vt, ft, faces, uv_path, "ft")


def _read_masks(masks_path: Path, num_vertices: int) -> dict[str, np.ndarray]:
    masks = _read_side_file(masks_path, "masks", "give FLAME_masks.pkl")
    if not isinstance(masks, dict):
        raise ModelFormatError(masks_path, "expected a dict of region name -> vertex indices (FLAME_masks.pkl)")
    regions = {}
    for name, idx in masks.items():
        idx = as_index_array(np.ravel(idx), f"mask {name!r}", masks_path)
        if idx.size and (idx.min() < 0 or idx.max() >= num_vertices):
            raise ModelFormatError(masks_path, f"mask {name!r} refers to vertex {idx.max()} but the model has "
                                   f"{num_vertices} vertices", "the masks must belong to the same FLAME version")
        mask = np.zeros(num_vertices, bool)
        mask[idx] = True
        regions[MASK_NAMES.get(str(name), str(name))] = mask
    return regions


def _read_landmark_embedding(lmk_path: Path, num_triangles: int) -> tuple[np.ndarray, np.ndarray]:
    hint = "give DECA's landmark_embedding.npy (68 points); FLAME's 51-point static embedding is not enough"
    data = _read_side_file(lmk_path, "landmark embedding", hint)
    if not isinstance(data, dict):
        raise ModelFormatError(lmk_path, "expected a dict with 'full_lmk_faces_idx' and 'full_lmk_bary_coords'",
                               hint)
    tri = as_index_array(np.ravel(require(data, "full_lmk_faces_idx", lmk_path, "68 triangle indices", hint)),
                         "full_lmk_faces_idx", lmk_path)
    bary = as_float_array(require(data, "full_lmk_bary_coords", lmk_path, "(68, 3) barycentrics", hint),
                          "full_lmk_bary_coords", lmk_path).reshape(-1, 3)
    if tri.shape != (68,) or bary.shape != (68, 3):
        raise ModelFormatError(lmk_path, f"expected 68 landmarks, found {tri.size} triangles / {bary.shape} "
                               "barycentrics")
    if tri.min() < 0 or tri.max() >= num_triangles:
        raise ModelFormatError(lmk_path, f"refers to triangle {tri.max()} but the model has {num_triangles}")
    return tri, bary

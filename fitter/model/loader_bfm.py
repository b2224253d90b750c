"""The Basel Face Model 2009 (``01_MorphableModel.mat``) and Deep3DFaceRecon's ``BFM_model_front.mat``.

Units: BFM 2009 coordinates are micrometres (the BFM authors: BFM 2009 is in micrometres, BFM 2017/2019 in
millimetres; Deep3DFaceRecon divides by 1e5 "to decimetres"), so x 1e-4 to centimetres; ``BFM_model_front.mat``
is that /1e5, decimetres, x 10. Axes: y up, the face towards +z (nose tip at large +z), as facefit's frame: no
rotation. Identity basis = ``shapePC * shapeEV`` (``shapeEV`` are standard deviations), so coefficients are
N(0, 1). BFM 2009 has no expression model: K_exp = 0 unless ``exp_path`` gives one.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from .loader_common import (
    ModelFormatError,
    as_float_array,
    as_index_array,
    assemble_model,
    mode_count,
    pad_polygons,
    read_landmarks68,
    read_npz_arrays,
    require,
    unit_scale,
)
from .morphable import MorphableModel

BFM2009_UNITS = "um"
DEFAULT_SHAPE_MODES = 100
FRONT_UNITS = "dm"  # Deep3DFaceRecon's BFM_model_front.mat: micrometres / 1e5
HINT_2009 = "give the Basel Face Model 2009 file 01_MorphableModel.mat (or Deep3DFaceRecon's BFM_model_front.mat)"


def read_mat(path: Path) -> dict[str, np.ndarray]:
    """Variables of a MATLAB file: v5 through scipy, v7.3 (HDF5) through h5py (transposed back to MATLAB's
    shapes)."""
    try:
        data = scipy.io.loadmat(path)
    except NotImplementedError:  # scipy's answer to v7.3 files
        return _read_mat73(path)
    except (ValueError, TypeError, OSError, zipfile.BadZipFile, scipy.io.matlab.MatReadError) as err:
        raise ModelFormatError(path, f"not a readable MATLAB .mat file ({err})", HINT_2009) from None
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _read_mat73(path: Path) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise ModelFormatError(
            path, "this is a MATLAB v7.3 (HDF5) file and reading it needs h5py, which is not installed",
            "pip install h5py, or re-save the file in MATLAB with save(..., '-v7')",
        ) from None
    out = {}
    try:
        with h5py.File(path, "r") as fh:
            for key, item in fh.items():
                if isinstance(item, h5py.Dataset) and not key.startswith("#"):
                    arr = np.asarray(item)
                    out[key] = arr.T if arr.ndim >= 2 else arr  # HDF5 stores MATLAB arrays column-major
    except OSError as err:
        raise ModelFormatError(path, f"cannot read this MATLAB v7.3 file ({err})") from None
    return out


def _column(value: Any, key: str, path: Path) -> np.ndarray:
    arr = as_float_array(value, key, path)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ModelFormatError(path, f"{key!r} has shape {arr.shape}, expected a vector")
    return arr


def _triangles(value: Any, key: str, path: Path, num_vertices: int) -> np.ndarray:
    tri = as_index_array(value, key, path)
    if tri.ndim == 2 and tri.shape[0] == 3 and tri.shape[1] != 3:
        tri = tri.T
    if tri.ndim != 2 or tri.shape[1] != 3:
        raise ModelFormatError(path, f"{key!r} has shape {tri.shape}, expected (T, 3) triangles")
    if tri.min() < 1:
        raise ModelFormatError(path, f"{key!r} has index {tri.min()}; BFM triangles are 1-based (MATLAB)")
    return pad_polygons(tri - 1, key, path, num_vertices)


def load_bfm(
    path: str | Path,
    *,
    n_shape: int | str | None = None,
    n_exp: int | str | None = None,
    exp_path: str | Path | None = None,
    exp_std_path: str | Path | None = None,
    exp_index_path: str | Path | None = None,
    uv_path: str | Path | None = None,
    landmarks68: Any = None,
    units: str | None = None,
    device: str = "cpu",
) -> MorphableModel:
    """A BFM 2009 .mat as a MorphableModel in centimetres.

    n_shape: identity modes kept; None: the first 100 (of BFM 2009's 199; of Deep3DFaceRecon's 80, all);
    "all": every mode. n_exp: expression modes kept; None or "all": every mode the expression basis has.
    exp_path: an expression basis for BFM 2009: Guo et al.'s ``Exp_Pca.bin`` (with ``std_exp.txt`` and, when it
    covers fewer vertices than the model, ``BFM_exp_idx.mat``; both looked up next to it unless given by
    ``exp_std_path`` / ``exp_index_path``), or an ``.npz`` with ``expression_basis`` (K, V, 3) (+ ``units``).
    When the expression covers a subset of vertices the model is trimmed to that subset.
    uv_path: per-vertex UVs, e.g. 3DMMasSTN's ``BFM_UV.mat`` (``UV`` (V, 2)) or an (V, 2) ``.npy``.
    landmarks68: 68 vertex indices of the loaded (possibly trimmed) model, or a .npy/.txt file of them.
    units: override the file's units (default: um for 01_MorphableModel.mat, dm for BFM_model_front.mat).
    """
    path = Path(path)
    data = read_mat(path)
    if "shapeMU" in data:
        return _load_2009(path, data, n_shape, n_exp, exp_path, exp_std_path, exp_index_path, uv_path,
                          landmarks68, units, device)
    if "meanshape" in data and "idBase" in data:
        if exp_path is not None:
            raise ValueError("BFM_model_front.mat has its own expression basis; exp_path is for BFM 2009 only")
        return _load_front(path, data, n_shape, n_exp, uv_path, landmarks68, units, device)
    have = ", ".join(sorted(data)) or "nothing"
    raise ModelFormatError(path, f"not a Basel Face Model: no 'shapeMU' (BFM 2009) or 'meanshape'/'idBase' "
                           f"(BFM_model_front) variable; the file has: {have}", HINT_2009)


def _load_2009(path, data, n_shape, n_exp, exp_path, exp_std_path, exp_index_path, uv_path, landmarks68, units,
               device) -> MorphableModel:
    mu = _column(data["shapeMU"], "shapeMU", path)
    if mu.size % 3:
        raise ModelFormatError(path, f"'shapeMU' has {mu.size} values, not a multiple of 3 (x, y, z per vertex)")
    num_vertices = mu.size // 3
    pc = np.asarray(require(data, "shapePC", path, "(3N, K) shape components", HINT_2009))
    ev = _column(require(data, "shapeEV", path, "(K, 1) shape standard deviations", HINT_2009), "shapeEV", path)
    if pc.ndim != 2 or pc.shape[0] != 3 * num_vertices or pc.shape[1] != ev.size:
        raise ModelFormatError(path, f"'shapePC' has shape {pc.shape} and 'shapeEV' {ev.size} values; expected "
                               f"({3 * num_vertices}, K) and K (BFM 2009: (160470, 199) and 199)")
    tri = _triangles(require(data, "tl", path, "(T, 3) 1-based triangles", HINT_2009), "tl", path, num_vertices)
    scale = unit_scale(units or BFM2009_UNITS, path)
    n_id = mode_count(n_shape, ev.size, "n_shape", "identity", path, default=DEFAULT_SHAPE_MODES)

    mean = mu.reshape(num_vertices, 3) * scale
    pc = as_float_array(pc[:, :n_id], "shapePC", path)  # only the kept columns (the full matrix is 128 MB)
    identity = (pc * ev[:n_id]).T.reshape(n_id, num_vertices, 3) * scale
    expression = np.zeros((0, num_vertices, 3))
    exp_names = None
    warnings, source = [], {"file_units": units or BFM2009_UNITS, "scale_to_cm": scale, "variant": "bfm2009"}
    extras = {}
    if "texMU" in data:
        tex = _column(data["texMU"], "texMU", path)
        if tex.size == 3 * num_vertices:
            extras["vertex_color_mean"] = (tex.reshape(num_vertices, 3) / 255.0).astype(np.float32)
    labels = {}
    if "segbin" in data:
        seg = np.asarray(data["segbin"])
        seg = seg.T if seg.ndim == 2 and seg.shape[1] == num_vertices else seg
        if seg.ndim == 2 and seg.shape[0] == num_vertices:
            labels["bfm_segments"] = np.argmax(seg, axis=1)

    keep = None
    if exp_path is None:
        warnings.append("BFM 2009 has no expression model: the model has 0 expression modes (give exp_path)")
    else:
        exp_path = Path(exp_path)
        exp_cm, exp_names, keep = _read_expression(exp_path, exp_std_path, exp_index_path, num_vertices, scale)
        n_ex = mode_count(n_exp, len(exp_cm), "n_exp", "expression", exp_path)
        expression = exp_cm[:n_ex]
        exp_names = exp_names[:n_ex] if exp_names is not None else None
        source["expression_file"] = str(exp_path)

    uvs = polygon_uvs = None
    if uv_path is not None:
        vertex_uvs = _read_vertex_uvs(Path(uv_path), num_vertices)
        uvs, polygon_uvs = vertex_uvs.astype(np.float32), tri.copy()

    if keep is not None:  # the expression basis covers a subset: trim the model to it
        mean, identity = mean[keep], identity[:, keep]
        tri, new_index = _trim_triangles(tri, keep, num_vertices)
        if uvs is not None:
            uvs, polygon_uvs = uvs[keep], tri.copy()
        extras = {k: v[keep] for k, v in extras.items()}
        labels = {k: v[keep] for k, v in labels.items()}
        source["kept_vertices"] = keep
        warnings.append(f"trimmed to the {len(keep)} vertices the expression basis covers (of {num_vertices}); "
                        "source['kept_vertices'] maps them back")
        num_vertices = len(keep)

    lm68 = read_landmarks68(landmarks68, num_vertices, path)
    return assemble_model(
        path, fmt="bfm", name=f"bfm2009:{path.stem}", mean_cm=mean, identity_cm=identity,
        expression_cm=expression, polygons=tri, uvs=uvs, polygon_uvs=polygon_uvs, landmarks68=lm68,
        vertex_labels=labels, identity_names=[f"shape{i:03d}" for i in range(n_id)], expression_names=exp_names,
        warnings=warnings, source=source, extras=extras, device=device,
    )


def _load_front(path, data, n_shape, n_exp, uv_path, landmarks68, units, device) -> MorphableModel:
    mu = _column(data["meanshape"], "meanshape", path)
    if mu.size % 3:
        raise ModelFormatError(path, f"'meanshape' has {mu.size} values, not a multiple of 3")
    num_vertices = mu.size // 3
    scale = unit_scale(units or FRONT_UNITS, path)
    bases = {}
    for key in ("idBase", "exBase"):
        b = as_float_array(require(data, key, path, "(3N, K) basis", HINT_2009), key, path, 2)
        if b.shape[0] != 3 * num_vertices:
            raise ModelFormatError(path, f"{key!r} has shape {b.shape}, expected ({3 * num_vertices}, K)")
        bases[key] = b
    n_id = mode_count(n_shape, bases["idBase"].shape[1], "n_shape", "identity", path, default=DEFAULT_SHAPE_MODES)
    n_ex = mode_count(n_exp, bases["exBase"].shape[1], "n_exp", "expression", path)
    tri = _triangles(require(data, "tri", path, "(T, 3) 1-based triangles", HINT_2009), "tri", path, num_vertices)
    lm68 = read_landmarks68(landmarks68, num_vertices, path)
    if lm68 is None and "keypoints" in data:
        lm68 = read_landmarks68(np.ravel(data["keypoints"]).astype(np.int64) - 1, num_vertices, path)
    extras = {}
    if "meantex" in data:
        tex = _column(data["meantex"], "meantex", path)
        if tex.size == 3 * num_vertices:
            extras["vertex_color_mean"] = (tex.reshape(num_vertices, 3) / 255.0).astype(np.float32)
    uvs = polygon_uvs = None
    if uv_path is not None:
        uvs, polygon_uvs = _read_vertex_uvs(Path(uv_path), num_vertices).astype(np.float32), tri.copy()
    return assemble_model(
        path, fmt="bfm", name=f"bfm-front:{path.stem}", mean_cm=mu.reshape(num_vertices, 3) * scale,
        identity_cm=bases["idBase"][:, :n_id].T.reshape(n_id, num_vertices, 3) * scale,
        expression_cm=bases["exBase"][:, :n_ex].T.reshape(n_ex, num_vertices, 3) * scale,
        polygons=tri, uvs=uvs, polygon_uvs=polygon_uvs, landmarks68=lm68,
        identity_names=[f"shape{i:03d}" for i in range(n_id)],
        warnings=[], source={"file_units": units or FRONT_UNITS, "scale_to_cm": scale, "variant": "bfm_front"},
        extras=extras, device=device,
    )


def _trim_triangles(tri: np.ndarray, keep: np.ndarray, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    new_index = np.full(num_vertices, -1, np.int64)
    new_index[keep] = np.arange(len(keep))
    inside = (new_index[tri[:, :3]] >= 0).all(axis=1)
    out = np.full((int(inside.sum()), 4), -1, np.int32)
    out[:, :3] = new_index[tri[inside, :3]]
    return out, new_index


def _read_vertex_uvs(uv_path: Path, num_vertices: int) -> np.ndarray:
    if not uv_path.exists():
        raise FileNotFoundError(f"BFM UV file {uv_path} does not exist")
    if uv_path.suffix.lower() == ".mat":
        data = read_mat(uv_path)
        key = next((k for k in ("UV", "uv", "uv_coords") if k in data), None)
        if key is None:
            raise ModelFormatError(uv_path, f"no 'UV' variable (per-vertex UVs); the file has {sorted(data)}")
        uv = data[key]
    else:
        try:
            uv = np.load(uv_path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ModelFormatError(uv_path, f"cannot read per-vertex UVs ({err})") from None
    uv = as_float_array(uv, "UV", uv_path, 2)
    if uv.shape == (2, num_vertices):
        uv = uv.T
    if uv.shape != (num_vertices, 2):
        raise ModelFormatError(uv_path, f"UVs have shape {uv.shape}, expected ({num_vertices}, 2), one per vertex "
                               "of the full BFM")
    return uv


def _read_expression(exp_path: Path, std_path, index_path, num_vertices: int, shape_scale: float):
    """(basis (K, n, 3) in cm, names or None, kept model vertices or None)."""
    if not exp_path.exists():
        raise FileNotFoundError(f"BFM expression file {exp_path} does not exist")
    if exp_path.suffix.lower() == ".npz":
        data = read_npz_arrays(exp_path)
        basis = as_float_array(require(data, "expression_basis", exp_path, "(K, V, 3) expression basis"),
                               "expression_basis", exp_path, 3)
        scale = unit_scale(data["units"], exp_path) if "units" in data else shape_scale
        names = [str(n) for n in data["expression_names"]] if "expression_names" in data else None
        keep = None
        if "vertex_index" in data:
            keep = as_index_array(np.ravel(data["vertex_index"]), "vertex_index", exp_path)
        n = basis.shape[1]
        if names is not None and len(names) != len(basis):
            raise ModelFormatError(exp_path, f"{len(names)} expression_names for {len(basis)} expression modes")
        return basis * scale, names, _check_keep(keep, n, num_vertices, exp_path)
    if exp_path.suffix.lower() != ".bin":
        raise ModelFormatError(exp_path, "unknown expression file type",
                               "give Exp_Pca.bin (Guo et al., as used by Deep3DFaceRecon) or an .npz")
    pcs, n = _read_exp_pca_bin(exp_path)
    std_path = Path(std_path) if std_path is not None else exp_path.with_name("std_exp.txt")
    if not std_path.exists():
        raise ModelFormatError(exp_path, f"needs the expression standard deviations ({std_path} not found)",
                               "pass exp_std_path= (std_exp.txt from Deep3DFaceRecon's BFM folder)")
    try:
        std = np.loadtxt(std_path).ravel()
    except ValueError as err:
        raise ModelFormatError(std_path, f"cannot read standard deviations ({err})") from None
    if std.size < len(pcs):
        raise ModelFormatError(std_path, f"{std.size} standard deviations for {len(pcs)} expression modes")
    basis = pcs * std[: len(pcs), None, None] * shape_scale  # same units as the shape model (micrometres)
    keep = None
    if n != num_vertices:
        index_path = Path(index_path) if index_path is not None else exp_path.with_name("BFM_exp_idx.mat")
        if not index_path.exists():
            raise ModelFormatError(exp_path, f"covers {n} vertices, the model {num_vertices}; the vertex index "
                                   f"({index_path}) is missing",
                                   "pass exp_index_path= (BFM_exp_idx.mat with 'trimIndex', 1-based)")
        idx = read_mat(index_path)
        keep = as_index_array(np.ravel(require(idx, "trimIndex", index_path, "1-based vertex indices")),
                              "trimIndex", index_path) - 1
    return basis, None, _check_keep(keep, n, num_vertices, exp_path)


def _check_keep(keep, n, num_vertices, path):
    if keep is None:
        if n != num_vertices:
            raise ModelFormatError(path, f"covers {n} vertices but the model has {num_vertices}",
                                   "add 'vertex_index' (which model vertex each row is)")
        return None
    if keep.shape != (n,) or keep.min() < 0 or keep.max() >= num_vertices or len(np.unique(keep)) != n:
        raise ModelFormatError(path, f"the vertex index must list {n} distinct model vertices in "
                               f"[0, {num_vertices})")
    return keep


def _read_exp_pca_bin(path: Path) -> tuple[np.ndarray, int]:
    """Guo et al.'s Exp_Pca.bin: int32 K, float32 mean (3n), float32 K x 3n components (one per row)."""
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ModelFormatError(path, "too short for an Exp_Pca.bin")
    k = int(np.frombuffer(raw[:4], np.int32)[0])
    floats = (len(raw) - 4) // 4
    if k <= 0 or (len(raw) - 4) % 4 or floats % (3 * (k + 1)):
        raise ModelFormatError(path, f"size {len(raw)} bytes does not fit an Exp_Pca.bin with {k} modes")
    n = floats // (3 * (k + 1))
    values = np.frombuffer(raw[4:], np.float32).astype(np.float64)
    pcs = values[3 * n :].reshape(k, n, 3)  # the mean (first 3n floats) is not used, as in Deep3DFaceRecon
    return pcs, n

"""facefit's generic model format: one ``.npz`` any linear face model can be converted to (docs/models.md).

Required: ``mean`` (V, 3), ``identity_basis`` (K, V, 3), and ``triangles`` (T, 3) or ``polygons`` (P, 4, -1
pads). Optional: ``expression_basis`` (K2, V, 3); ``units`` (m, cm, mm; default cm); ``uvs`` (U, 2) with
``triangle_uvs`` / ``polygon_uvs`` (or ``uvs`` (V, 2) alone: one UV per vertex); ``identity_names``,
``expression_names``; ``landmarks68`` (68,); ``region_<name>`` (V,) bool; ``contour_substitutes`` (S, 2);
``embedding_<name>_triangles`` (N,) with ``embedding_<name>_barycentrics`` (N, 3).
Vertices must already be in facefit's frame (x right, y up, the face towards +z).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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
    require,
    unit_scale,
)
from .morphable import MorphableModel

HINT = "see docs/models.md ('Generic .npz') for the keys and shapes facefit expects"


def _names(data: dict, key: str, count: int, path: Path) -> list[str] | None:
    if key not in data:
        return None
    names = [str(n) for n in np.ravel(data[key])]
    if len(names) != count:
        raise ModelFormatError(path, f"{key!r} has {len(names)} names for {count} modes")
    return names


def load_npz(
    path: str | Path,
    *,
    n_shape: int | str | None = None,
    n_exp: int | str | None = None,
    landmarks68: Any = None,
    device: str = "cpu",
) -> MorphableModel:
    """A model in facefit's generic .npz format (see docs/models.md). n_shape / n_exp truncate the bases
    (None or "all" keeps all); landmarks68 overrides the file's ``landmarks68``."""
    path = Path(path)
    data = read_npz_arrays(path, HINT)
    mean = as_float_array(require(data, "mean", path, "(V, 3) mean shape", HINT), "mean", path, 2)
    num_vertices = len(mean)
    if mean.shape[1] != 3 or num_vertices == 0:
        raise ModelFormatError(path, f"'mean' has shape {mean.shape}, expected (V, 3)", HINT)
    scale = unit_scale(data["units"], path) if "units" in data else 1.0

    bases = {}
    for key in ("identity_basis", "expression_basis"):
        if key not in data:
            if key == "identity_basis":
                require(data, key, path, "(K, V, 3) identity basis", HINT)
            bases[key] = np.zeros((0, num_vertices, 3))
            continue
        b = as_float_array(data[key], key, path)
        if b.ndim == 2 and b.shape[1] == 3 * num_vertices:
            b = b.reshape(len(b), num_vertices, 3)  # accepted: (K, 3V) interleaved xyz
        if b.ndim != 3 or b.shape[1:] != (num_vertices, 3):
            raise ModelFormatError(path, f"{key!r} has shape {b.shape}, expected (K, {num_vertices}, 3)", HINT)
        bases[key] = b
    n_id = mode_count(n_shape, len(bases["identity_basis"]), "n_shape", "identity", path)
    n_ex = mode_count(n_exp, len(bases["expression_basis"]), "n_exp", "expression", path)
    id_names = _names(data, "identity_names", len(bases["identity_basis"]), path)
    ex_names = _names(data, "expression_names", len(bases["expression_basis"]), path)

    if ("triangles" in data) == ("polygons" in data):
        raise ModelFormatError(path, "give exactly one of 'triangles' (T, 3) and 'polygons' (P, 4, -1 pads)" +
                               (" (found both)" if "triangles" in data else " (found neither)"), HINT)
    conn_key = "triangles" if "triangles" in data else "polygons"
    polygons = pad_polygons(data[conn_key], conn_key, path, num_vertices)
    if conn_key == "triangles" and (polygons[:, 3] >= 0).any():
        raise ModelFormatError(path, "'triangles' must have 3 columns; use 'polygons' for quads", HINT)

    uvs = polygon_uvs = None
    uv_key = "triangle_uvs" if conn_key == "triangles" else "polygon_uvs"
    if "uvs" in data:
        if uv_key in data:
            uvs, polygon_uvs = check_uvs(data["uvs"], data[uv_key], polygons, path, uv_key)
        elif np.shape(data["uvs"]) == (num_vertices, 2):
            uvs, polygon_uvs = check_uvs(data["uvs"], polygons, polygons, path, conn_key)
        else:
            raise ModelFormatError(path, f"'uvs' has shape {np.shape(data['uvs'])} but there is no {uv_key!r}",
                                   f"add {uv_key!r} (UV index per corner) or give one UV per vertex ({num_vertices}, 2)")
    elif uv_key in data:
        raise ModelFormatError(path, f"{uv_key!r} without 'uvs'", HINT)

    regions = {k[len("region_"):]: data[k] for k in data if k.startswith("region_")}
    lm68 = read_landmarks68(landmarks68 if landmarks68 is not None else data.get("landmarks68"), num_vertices, path)
    substitutes = {}
    if "contour_substitutes" in data:
        subs = as_index_array(data["contour_substitutes"], "contour_substitutes", path)
        if subs.ndim != 2 or subs.shape[1] != 2 or (subs[:, 0] < 0).any() or (subs[:, 0] > 67).any() \
                or (subs[:, 1] < 0).any() or (subs[:, 1] >= num_vertices).any():
            raise ModelFormatError(path, "'contour_substitutes' must be (S, 2) rows of (iBUG index 0-67, vertex)")
        substitutes = {int(i): int(v) for i, v in subs}
    embeddings = {}
    for key in data:
        if key.startswith("embedding_") and key.endswith("_triangles"):
            name = key[len("embedding_"):-len("_triangles")]
            bary_key = f"embedding_{name}_barycentrics"
            embeddings[name] = (data[key], require(data, bary_key, path, "(N, 3) barycentrics", HINT))

    return assemble_model(
        path,
        fmt="npz",
        name=str(data["name"]) if "name" in data else path.stem,
        mean_cm=mean * scale,
        identity_cm=bases["identity_basis"][:n_id] * scale,
        expression_cm=bases["expression_basis"][:n_ex] * scale,
        polygons=polygons,
        uvs=uvs,
        polygon_uvs=polygon_uvs,
        regions=regions,
        landmarks68=lm68,
        contour_substitutes=substitutes,
        embeddings=embeddings,
        identity_names=id_names[:n_id] if id_names else None,
        expression_names=ex_names[:n_ex] if ex_names else None,
        source={"file_units": str(data["units"]) if "units" in data else "cm (default)", "scale_to_cm": scale},
        device=device,
    )

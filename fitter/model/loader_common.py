"""Shared pieces of the model loaders: the error type, unit scales, validation, topology assembly.

Every loader ends in :func:`assemble_model`, so models from any file format come out the same way: vertices in
centimetres in facefit's model frame (x right, y up, the face looking towards +z), a :class:`Topology` with
placeholder UVs when the format has none (``has_uvs`` False), at least a ``face`` region, and three attributes
the format-specific code fills in: ``warnings`` (what the conversion dropped or guessed), ``source`` (where it
came from and what was converted) and ``extras`` (data kept for later use, e.g. FLAME's skinning weights).
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import FileProblem
from .morphable import MorphableModel
from .obj_reader import read_obj
from .topology import FACE_MATERIAL, SurfaceEmbedding, Topology, triangulate

MODEL_FRAME = "x right, y up, the face looks towards +z"

# Length units a model file may use, as a scale to centimetres.
UNIT_TO_CM = {"m": 100.0, "dm": 10.0, "cm": 1.0, "mm": 0.1, "um": 1e-4, "µm": 1e-4}

# A face or head is 10-30 cm wide; outside this range the units are almost certainly wrong.
PLAUSIBLE_WIDTH_CM = (3.0, 80.0)



class ModelFormatError(FileProblem, ValueError):
    """A model file facefit cannot use. The message says which file, what is wrong, and what to do
    (``"<path>: <problem>. <hint>"``). Also a ValueError: a bad model file is a bad value given to a loader,
    and code that catches ValueError around a load keeps working."""

    HINT_FORMAT = ". {}"


# -- reading ---------------------------------------------------------------------------------------------------
OBJECT_ARRAY_HINT = "store names as string arrays (np.array(names, dtype=str)) and numbers as numeric arrays"


def read_npz_arrays(path: str | Path, hint: str = "", skip_objects: bool = False) -> dict[str, np.ndarray | None]:
    """Every array of an .npz archive, read without unpickling (a model file must not run code on loading).

    Arrays of Python objects (which need pickle) are a ModelFormatError, or None with ``skip_objects`` (for
    archives whose object arrays the loader does not need); an unreadable archive is a ModelFormatError with
    ``hint``.
    """
    data: dict[str, np.ndarray | None] = {}
    objects = []
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    data[key] = npz[key]
                except ValueError:  # an object array: reading it needs pickle
                    data[key] = None
                    objects.append(key)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ModelFormatError(path, f"not a readable .npz archive ({err})", hint) from None
    if objects and not skip_objects:
        raise ModelFormatError(path, f"the archive holds Python objects ({', '.join(objects)}), which facefit "
                               "does not unpickle", OBJECT_ARRAY_HINT)
    return data


# -- small validation helpers ---------------------------------------------------------------------------------
def unit_scale(units: Any, path: str | Path) -> float:
    """Scale from ``units`` (m, dm, cm, mm, um) to centimetres."""
    key = str(np.asarray(units).item() if isinstance(units, np.ndarray) else units).strip().lower()
    key = {"meters": "m", "metres": "m", "centimeters": "cm", "centimetres": "cm", "millimeters": "mm",
           "millimetres": "mm", "micrometers": "um", "micrometres": "um", "micron": "um", "microns": "um"}.get(key, key)
    if key not in UNIT_TO_CM:
        raise ModelFormatError(path, f"unknown units {units!r}", f"use one of {sorted(UNIT_TO_CM)}")
    return UNIT_TO_CM[key]


def as_float_array(value: Any, key: str, path: str | Path, ndim: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ModelFormatError(path, f"{key!r} is not a numeric array ({err})") from None
    if ndim is not None and arr.ndim != ndim:
        raise ModelFormatError(path, f"{key!r} has shape {arr.shape}, expected {ndim} dimensions")
    if not np.isfinite(arr).all():
        raise ModelFormatError(path, f"{key!r} contains NaN or infinite values", "the file is corrupt; re-export it")
    return arr


def as_index_array(value: Any, key: str, path: str | Path) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ModelFormatError(path, f"{key!r} must hold whole numbers (indices), found fractions")
    elif arr.dtype.kind not in "iub":
        raise ModelFormatError(path, f"{key!r} must be an integer index array, found dtype {arr.dtype}")
    return arr.astype(np.int64)


def require(data: dict, key: str, path: str | Path, expected: str, hint: str = "") -> Any:
    if key not in data:
        have = ", ".join(sorted(map(str, data))) or "nothing"
        raise ModelFormatError(path, f"missing key {key!r} ({expected}); the file has: {have}", hint)
    return data[key]


def mode_count(requested: int | str | None, available: int, option: str, what: str, path: str | Path,
               default: int | None = None) -> int:
    """How many modes to keep: ``requested``, or "all", or None for ``default`` (capped at what the file has;
    no default: all), checked against what the file has."""
    if requested is None:
        return available if default is None else min(default, available)
    if isinstance(requested, str) and requested.lower() == "all":
        return available
    if not isinstance(requested, (int, np.integer)) or isinstance(requested, bool) or requested < 0:
        raise ValueError(f"{option} must be a non-negative integer or 'all', got {requested!r}")
    if requested > available:
        raise ModelFormatError(
            path, f"{option}={requested} asks for more {what} modes than the file has ({available})",
            f"use {option}<={available} or {option}='all'",
        )
    return int(requested)


def read_landmarks68(value: Any, num_vertices: int, path: str | Path) -> np.ndarray | None:
    """The ``landmarks68`` option: None, 68 vertex indices, or a .npy/.txt file of them (0-based)."""
    if value is None:
        return None
    source = path
    if isinstance(value, (str, Path)):
        source = Path(value)
        if not source.exists():
            raise FileNotFoundError(f"landmarks68 file {source} does not exist")
        try:
            value = np.load(source) if source.suffix == ".npy" else np.loadtxt(source)
        except Exception as err:  # noqa: BLE001 - any parse failure is the same user error
            raise ModelFormatError(source, f"cannot read 68 landmark indices ({err})",
                                   "give a .npy or whitespace-separated text file of 68 0-based vertex indices") from None
    lm = as_index_array(np.ravel(value), "landmarks68", source)
    if lm.shape != (68,):
        raise ModelFormatError(source, f"landmarks68 has {lm.size} entries, expected 68 (iBUG order)")
    if lm.min() < 0 or lm.max() >= num_vertices:
        raise ModelFormatError(source, f"landmarks68 indices must lie in [0, {num_vertices}); found "
                               f"[{lm.min()}, {lm.max()}]", "they are 0-based vertex indices of the loaded model")
    return lm


# -- connectivity ---------------------------------------------------------------------------------------------
def pad_polygons(polys: np.ndarray, key: str, path: str | Path, num_vertices: int) -> np.ndarray:
    """(P, 3) or (P, 4) with -1 pads -> validated (P, 4) int32."""
    polys = as_index_array(polys, key, path)
    if polys.ndim != 2 or polys.shape[1] not in (3, 4) or len(polys) == 0:
        raise ModelFormatError(path, f"{key!r} has shape {polys.shape}, expected (P, 3) triangles or (P, 4) "
                               "quads with -1 in the 4th column of triangles")
    if polys.shape[1] == 3:
        polys = np.concatenate([polys, np.full((len(polys), 1), -1, np.int64)], axis=1)
    if (polys[:, :3] < 0).any() or (polys[:, 3] < -1).any():
        raise ModelFormatError(path, f"{key!r} has negative indices", "only the 4th corner may be -1 (a triangle)")
    if polys.max() >= num_vertices:
        raise ModelFormatError(path, f"{key!r} refers to vertex {polys.max()} but the model has {num_vertices} "
                               "vertices", "indices must be 0-based")
    return polys.astype(np.int32)


def placeholder_uvs(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One UV at (0, 0) used by every corner: keeps Topology's arrays valid for a model without UVs."""
    return np.zeros((1, 2), np.float32), np.where(polygons >= 0, 0, -1).astype(np.int32)


def check_uvs(uvs: Any, polygon_uvs: Any, polygons: np.ndarray, path: str | Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    uvs = as_float_array(uvs, "uvs", path, ndim=2)
    if uvs.shape[1] != 2 or len(uvs) == 0:
        raise ModelFormatError(path, f"'uvs' has shape {uvs.shape}, expected (U, 2)")
    puv = as_index_array(polygon_uvs, key, path)
    if puv.ndim == 2 and puv.shape[1] == 3:
        puv = np.concatenate([puv, np.full((len(puv), 1), -1, np.int64)], axis=1)
    if puv.shape != polygons.shape:
        raise ModelFormatError(path, f"{key!r} has shape {puv.shape}, expected one UV index per polygon corner "
                               f"{polygons.shape}")
    if not np.array_equal(puv < 0, polygons < 0):
        raise ModelFormatError(path, f"{key!r} must have -1 exactly where the polygons have -1 (triangles)")
    if puv.max() >= len(uvs):
        raise ModelFormatError(path, f"{key!r} refers to UV {puv.max()} but there are {len(uvs)} UVs",
                               "indices must be 0-based")
    return uvs.astype(np.float32), puv.astype(np.int32)


def orient_outward(polygons: np.ndarray, polygon_uvs: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Reverse every polygon when the mesh's winding is clearly inward (facefit wants counter-clockwise seen
    from outside). The test: area-weighted normals against the direction from the mesh's centre, which is
    positive for an outward face mask or head and near zero only for flat, ambiguous meshes (left alone)."""
    tris, _, _ = triangulate(polygons, polygon_uvs)
    v = vertices.astype(np.float64)
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    normals = np.cross(b - a, c - a)
    centre = v[np.unique(tris)].mean(axis=0)
    terms = np.einsum("ij,ij->i", normals, (a + b + c) / 3.0 - centre)
    total = np.abs(terms).sum()
    if total == 0 or terms.sum() >= -0.2 * total:
        return polygons, polygon_uvs, False
    quad = polygons[:, 3] >= 0
    order_tri, order_quad = [0, 2, 1, 3], [0, 3, 2, 1]
    flip = lambda p: np.where(quad[:, None], p[:, order_quad], p[:, order_tri])  # noqa: E731
    return flip(polygons), flip(polygon_uvs), True


# -- regions ----------------------------------------------------------------------------------------------------
def complete_regions(regions: dict[str, np.ndarray], num_vertices: int, path: str | Path) -> dict[str, np.ndarray]:
    """Validate masks and add the conventional names a format lacks: ``face`` (all vertices but eyeballs),
    ``narrow_face`` (= face), ``eyes`` (both eyeballs) and ``face_and_head`` (everything but the eyeballs)."""
    out = {}
    for name, mask in regions.items():
        mask = np.asarray(mask)
        if mask.shape != (num_vertices,):
            raise ModelFormatError(path, f"region {name!r} has shape {mask.shape}, expected ({num_vertices},) "
                                   "(one boolean per vertex)")
        if mask.dtype != bool:
            if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
                raise ModelFormatError(path, f"region {name!r} must be a boolean (or 0/1) mask")
            mask = mask.astype(bool)
        out[name] = mask
    eyes = np.zeros(num_vertices, bool)
    for side in ("eyeball_left", "eyeball_right"):
        if side in out:
            eyes |= out[side]
    if "eyeball_left" in out or "eyeball_right" in out:
        out.setdefault("eyes", eyes)
    out.setdefault("face", ~eyes if eyes.any() else np.ones(num_vertices, bool))
    out.setdefault("narrow_face", out["face"].copy())
    if "head_neck" in out:
        out.setdefault("face_and_head", out["face"] | out["head_neck"])
    else:
        out.setdefault("face_and_head", ~eyes)
    return out


def check_embedding(name: str, triangles: Any, barycentrics: Any, num_triangles: int, path: str | Path) -> SurfaceEmbedding:
    tri = as_index_array(np.ravel(triangles), f"{name} triangles", path)
    bary = as_float_array(barycentrics, f"{name} barycentrics", path)
    bary = bary.reshape(-1, 3) if bary.size == 3 * len(tri) else bary
    if bary.shape != (len(tri), 3):
        raise ModelFormatError(path, f"embedding {name!r}: barycentrics have shape {bary.shape}, expected "
                               f"({len(tri)}, 3)")
    if tri.min(initial=0) < 0 or tri.max(initial=0) >= num_triangles:
        raise ModelFormatError(path, f"embedding {name!r} refers to triangle {tri.max()} but the mesh has "
                               f"{num_triangles} triangles", "indices are 0-based rows of Topology.triangles")
    if not np.allclose(bary.sum(axis=1), 1.0, atol=1e-3):
        raise ModelFormatError(path, f"embedding {name!r}: barycentric rows must sum to 1")
    return SurfaceEmbedding(tri, bary.astype(np.float32))


# -- assembly -------------------------------------------------------------------------------------------------
def assemble_model(
    path: str | Path,
    *,
    fmt: str,
    name: str,
    mean_cm: np.ndarray,
    identity_cm: np.ndarray,
    expression_cm: np.ndarray,
    polygons: np.ndarray,
    uvs: np.ndarray | None = None,
    polygon_uvs: np.ndarray | None = None,
    regions: dict[str, np.ndarray] | None = None,
    landmarks68: np.ndarray | None = None,
    contour_substitutes: dict[int, int] | None = None,
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    vertex_labels: dict[str, np.ndarray] | None = None,
    identity_names: list[str] | None = None,
    expression_names: list[str] | None = None,
    warnings: list[str] | None = None,
    source: dict | None = None,
    extras: dict | None = None,
    device: str = "cpu",
) -> MorphableModel:
    """Validated arrays (already in cm, model frame) -> a MorphableModel with the loader attributes set.

    ``polygons`` must be validated (:func:`pad_polygons`); ``uvs``/``polygon_uvs`` too (:func:`check_uvs`) or None.
    Embeddings (name -> (triangle ids, barycentrics)) index the triangles *after* winding correction, which keeps
    triangle order, so they stay valid.
    """
    warnings = list(warnings or [])
    source = dict(source or {})
    num_vertices = mean_cm.shape[0]
    if mean_cm.shape != (num_vertices, 3) or num_vertices == 0:
        raise ModelFormatError(path, f"mean shape has shape {mean_cm.shape}, expected (V, 3)")
    for what, basis in (("identity", identity_cm), ("expression", expression_cm)):
        if basis.ndim != 3 or basis.shape[1:] != (num_vertices, 3):
            raise ModelFormatError(path, f"{what} basis has shape {basis.shape}, expected (K, {num_vertices}, 3)")

    has_uvs = uvs is not None
    if not has_uvs:
        uvs, polygon_uvs = placeholder_uvs(polygons)
        warnings.append("the model has no UVs: a placeholder (every corner at UV 0,0) fills the topology and "
                        "has_uvs is False, so texture/displacement exports are not possible")
    unflipped, unflipped_uvs = polygons, polygon_uvs
    polygons, polygon_uvs, flipped = orient_outward(polygons, polygon_uvs, mean_cm)
    if flipped:
        warnings.append("the polygons were wound clockwise seen from outside; every polygon was reversed to "
                        "facefit's counter-clockwise convention")
    source["winding_reversed"] = flipped

    used = np.zeros(num_vertices, bool)
    used[polygons[polygons >= 0]] = True
    if landmarks68 is not None and not used[landmarks68].all():
        bad = landmarks68[~used[landmarks68]]
        raise ModelFormatError(path, f"landmarks68 vertices {bad.tolist()} belong to no polygon",
                               "landmarks must sit on the mesh surface")
    regions = complete_regions(regions or {}, num_vertices, path)
    if landmarks68 is not None and not regions["face"][landmarks68].all():
        warnings.append("some landmarks68 vertices lie outside the 'face' region")

    labels = {}
    for key, lab in (vertex_labels or {}).items():
        lab = np.asarray(lab)
        if lab.shape != (num_vertices,):
            raise ModelFormatError(path, f"vertex labels {key!r} have shape {lab.shape}, expected ({num_vertices},)")
        labels[key] = lab.astype(np.int64)

    topology = Topology(
        polygons=polygons.astype(np.int32),
        polygon_uvs=polygon_uvs.astype(np.int32),
        polygon_material=np.zeros(len(polygons), np.int64),
        material_names=[FACE_MATERIAL],
        uvs=np.asarray(uvs, np.float32),
        num_vertices=num_vertices,
        regions=regions,
        landmarks68=landmarks68,
        contour_substitutes=dict(contour_substitutes or {}),
        vertex_labels=labels,
    )
    topology.has_uvs = has_uvs
    for key, (tri, bary) in (embeddings or {}).items():
        emb = check_embedding(key, tri, bary, len(topology.triangles), path)
        if flipped:
            emb = _follow_flip(emb, triangulate(unflipped, unflipped_uvs)[0], topology.triangles)
        topology.embeddings[key] = emb

    width = float(np.ptp(mean_cm[:, 0]))
    lo, hi = PLAUSIBLE_WIDTH_CM
    if not lo <= width <= hi:
        warnings.append(f"the mean shape is {width:.3g} cm wide after conversion; a face or head is 10-30 cm "
                        "wide, so the file's units are probably not what was assumed (see the 'units' option)")

    model = MorphableModel(
        mean_cm.astype(np.float32),
        identity_cm.astype(np.float32),
        expression_cm.astype(np.float32),
        topology,
        identity_names=identity_names,
        expression_names=expression_names,
        units="cm",
        name=name,
        device=device,
    )
    source.update(format=fmt, path=str(path), units="cm", axes=MODEL_FRAME)
    model.warnings = warnings
    model.source = source
    model.extras = dict(extras or {})
    return model


def _follow_flip(emb: SurfaceEmbedding, old_tris: np.ndarray, new_tris: np.ndarray) -> SurfaceEmbedding:
    """Re-express embedded points on the reversed triangles (same corners, other order and index)."""
    index = {frozenset(t.tolist()): i for i, t in enumerate(new_tris)}
    tri_ids = np.empty(len(emb), np.int64)
    bary = np.zeros((len(emb), 3), np.float32)
    for k, (t, w) in enumerate(zip(emb.triangles, emb.barycentrics)):
        corners = old_tris[t]
        tri_ids[k] = index[frozenset(corners.tolist())]
        for j, v in enumerate(new_tris[tri_ids[k]]):
            bary[k, j] = w[np.flatnonzero(corners == v)[0]]
    return SurfaceEmbedding(tri_ids, bary)


# -- OBJ UVs --------------------------------------------------------------------------------------------------
def read_obj_faces(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UVs (U, 2), face vertex indices (F, k), face UV indices (F, k)) of an OBJ whose faces all have k corners."""
    try:
        mesh = read_obj(path)
    except (OSError, ValueError) as err:
        raise ModelFormatError(path, f"cannot read the OBJ file ({err})") from None
    for k, corner_uvs in enumerate(mesh.face_uvs):
        if min(corner_uvs) < 0:
            raise ModelFormatError(path, f"face {k + 1} has no UV indices (f v/vt ...)",
                                   "export the OBJ with texture coordinates")
    if not mesh.faces or not len(mesh.uvs):
        raise ModelFormatError(path, "the OBJ has no textured faces (no 'vt' lines or no 'f' lines)")
    if len({len(f) for f in mesh.faces}) != 1:
        raise ModelFormatError(path, "the OBJ mixes polygon sizes", "triangulate it first")
    return mesh.uvs.astype(np.float32), np.asarray(mesh.faces, np.int64), np.asarray(mesh.face_uvs, np.int64)

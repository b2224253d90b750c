"""Convert the ICT Face Model Light into facefit's compact asset ``assets/ict_face_light.npz``.

Reproducible: ``python assets/build/build_ict.py --kit ../shared/models/ict-facekit``.

What is kept: the face, the head and neck, and the two eyeballs (sclera + iris); the mouth socket, gums,
teeth, lacrimal fluid, eye blend/occlusion shells and eyelashes are dropped. Vertices are re-indexed
compactly; ``source_vertex`` maps each kept vertex back to the kit's numbering.

Storage: the neutral mesh in float32; each identity/expression basis as int16 with one float32 scale per
mode (value = int16 * scale). The round-trip error is printed and must stay under 0.01 mm; int16 with a
per-mode scale is about 20x more precise than float16 at the same size.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fitter.model.obj_reader import read_obj as read_obj_file  # facefit itself must be importable

# Region table of the kit (0-based, inclusive vertex ranges; see shared/models/README.md).
FACE = (0, 9408)
NARROW_FACE = (0, 6705)
HEAD_NECK = (9409, 11247)
EYEBALLS = (21451, 24590)
# Polygon ranges kept: face, head and neck, then the four eyeball materials.
KEPT_POLYGONS = [(0, 9229), (9230, 11143), (21496, 24691)]
EYEBALL_LEFT_MATERIALS = ("M_ScleraLeft", "M_IrisLeft")
EYEBALL_RIGHT_MATERIALS = ("M_ScleraRight", "M_IrisRight")

JAW_SUBSTITUTE_RIGHT = [1278, 1272, 12, 1834, 243, 781, 2199, 1447]  # for iBUG 0-7
JAW_SUBSTITUTE_LEFT = [3661, 4390, 3022, 2484, 4036, 2253, 3490, 3496]  # for iBUG 9-16

TOLERANCE_CM = 0.001  # 0.01 mm


def read_obj(path: Path):
    """The kit's OBJ: UVs and polygons (vertex and UV indices, 0-based) with their material."""
    mesh = read_obj_file(path)
    return mesh.uvs.astype(np.float32), mesh.faces, mesh.face_uvs, mesh.materials, mesh.face_material


def quantize(basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int16 per-mode quantization: returns (int16 array, float32 scale per mode)."""
    flat = basis.reshape(basis.shape[0], -1)
    scale = np.abs(flat).max(axis=1) / 32767.0
    scale[scale == 0] = 1.0
    q = np.round(flat / scale[:, None]).astype(np.int16)
    return q.reshape(basis.shape), scale.astype(np.float32)


def pad_polygons(polys: list[list[int]]) -> np.ndarray:
    out = np.full((len(polys), 4), -1, np.int32)
    for i, p in enumerate(polys):
        out[i, : len(p)] = p
    return out


def build(kit: Path, out: Path) -> dict:
    shapes = np.load(kit / "ict_facekit_shapes.npz")
    indices = json.loads((kit / "vertex_indices.json").read_text())
    uvs, polys, poly_uvs, materials, material_of = read_obj(kit / "generic_neutral_mesh.obj")

    n_src = shapes["neutral"].shape[0]
    keep = np.zeros(n_src, bool)
    for lo, hi in (FACE, HEAD_NECK, EYEBALLS):
        keep[lo : hi + 1] = True
    source_vertex = np.flatnonzero(keep)
    new_index = np.full(n_src, -1, np.int64)
    new_index[source_vertex] = np.arange(len(source_vertex))

    kept_polys = [i for lo, hi in KEPT_POLYGONS for i in range(lo, hi + 1)]
    for i in kept_polys:
        assert all(keep[v] for v in polys[i]), f"polygon {i} uses a dropped vertex"
    poly_v = pad_polygons([[int(new_index[v]) for v in polys[i]] for i in kept_polys])
    used_uv = sorted({t for i in kept_polys for t in poly_uvs[i]})
    uv_index = {t: k for k, t in enumerate(used_uv)}
    poly_t = pad_polygons([[uv_index[t] for t in poly_uvs[i]] for i in kept_polys])
    kept_material_ids = sorted({int(material_of[i]) for i in kept_polys})
    kept_materials = [materials[m] for m in kept_material_ids]
    poly_material = np.asarray([kept_material_ids.index(int(material_of[i])) for i in kept_polys], np.int8)

    def region(lo: int, hi: int) -> np.ndarray:
        return (source_vertex >= lo) & (source_vertex <= hi)

    def material_vertices(names: tuple[str, ...]) -> np.ndarray:
        mask = np.zeros(len(source_vertex), bool)
        ids = [kept_materials.index(n) for n in names]
        sel = poly_v[np.isin(poly_material, ids)]
        mask[sel[sel >= 0]] = True
        return mask

    neutral = shapes["neutral"][keep].astype(np.float32)
    id_q, id_scale = quantize(shapes["identity_deltas"][:, keep])
    ex_q, ex_scale = quantize(shapes["expression_deltas"][:, keep])
    err_id = np.abs(id_q * id_scale[:, None, None] - shapes["identity_deltas"][:, keep]).max()
    err_ex = np.abs(ex_q * ex_scale[:, None, None] - shapes["expression_deltas"][:, keep]).max()
    assert max(err_id, err_ex) < TOLERANCE_CM, (err_id, err_ex)

    landmarks68 = new_index[np.asarray(indices["idx_to_landmark_verts"])]
    jaw_right = new_index[np.asarray(JAW_SUBSTITUTE_RIGHT)]
    jaw_left = new_index[np.asarray(JAW_SUBSTITUTE_LEFT)]
    assert (landmarks68 >= 0).all() and (jaw_right >= 0).all() and (jaw_left >= 0).all()

    arrays = dict(
        neutral=neutral,
        identity_basis=id_q,
        identity_scale=id_scale,
        identity_names=np.asarray(shapes["identity_names"]),
        expression_basis=ex_q,
        expression_scale=ex_scale,
        expression_names=np.asarray(shapes["expression_names"]),
        source_vertex=source_vertex.astype(np.int32),
        polygons=poly_v,
        polygon_uvs=poly_t,
        polygon_material=poly_material,
        material_names=np.asarray(kept_materials),
        uvs=uvs[used_uv],
        region_face=region(*FACE),
        region_narrow_face=region(*NARROW_FACE),
        region_head_neck=region(*HEAD_NECK),
        region_eyeball_left=material_vertices(EYEBALL_LEFT_MATERIALS),
        region_eyeball_right=material_vertices(EYEBALL_RIGHT_MATERIALS),
        landmarks68=landmarks68.astype(np.int32),
        jaw_substitute_right=jaw_right.astype(np.int32),
        jaw_substitute_left=jaw_left.astype(np.int32),
        units=np.asarray("cm"),
        axes=np.asarray("x right, y up, z towards the viewer"),
        source=np.asarray("ICT Face Model Light (USC ICT), MIT licence"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return {
        "vertices": int(len(source_vertex)),
        "polygons": int(len(poly_v)),
        "uvs": len(used_uv),
        "materials": kept_materials,
        "max_roundtrip_error_mm": float(max(err_id, err_ex) * 10.0),
        "bytes": out.stat().st_size,
    }


def main() -> None:
    here = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=here.parent / "shared" / "models" / "ict-facekit")
    parser.add_argument("--out", type=Path, default=here / "assets" / "ict_face_light.npz")
    args = parser.parse_args()
    print(json.dumps(build(args.kit, args.out), indent=1))


if __name__ == "__main__":
    main()

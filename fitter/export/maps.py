"""Every UV map of a fitted face in one call, for DCC tools: ``displacement.exr/.png``, ``normal.png``,
``albedo.png``, the updated ``mesh.mtl`` and optionally ``mesh_detail.obj``. Each file has its own module
(displacement, normal_map, albedo_map, material, detail_mesh); docs/exports.md has the conventions."""
from __future__ import annotations

from pathlib import Path

from ..common.arrays import as_numpy, scalar_map, texel_mask
from ..model.topology import Topology
from .albedo_map import albedo_map_from_vertices, write_albedo
from .detail_mesh import write_detail_mesh
from .displacement import write_displacement
from .material import detail_textures, face_textures, write_material
from .normal_map import NORMAL_CONVENTION, normal_map_from_displacement, write_normal_map
from .uv_layout import uv_mask


def export_maps(folder: Path, vertices, topology: Topology, displacement=None, albedo=None, mask=None,
                normal_size=None, normal_bits: int = 8, albedo_linear: bool = True, albedo_size: int = 1024,
                detail_levels: int | None = None, detail_region: str | None = "face",
                mtl_stem: str = "mesh") -> dict:
    """Everything for DCC tools in one call: ``displacement.exr/.png``, ``normal.png``, ``albedo.png``,
    the updated ``<mtl_stem>.mtl``, and optionally ``mesh_detail.obj`` (``detail_levels``).

    vertices: mesh.obj's vertices (V, 3) in cm; displacement: (H, W) cm or None; albedo: linear RGB, a UV map
    (3, S, S) or per-vertex colours (V, 3) (rendered into an ``albedo_size`` map), or None; mask: the
    displacement's valid texels (default: the face material's UV coverage). Returns a dict for params.npz /
    report.json: files, displacement scale/offset/units, normal-map convention.
    """
    if not getattr(topology, "has_uvs", True):
        raise ValueError("this model has no UVs: texture and displacement maps cannot be exported")
    folder = Path(folder)
    result: dict = {"files": []}
    disp_info = None
    if displacement is not None:
        d = scalar_map(displacement)
        m = uv_mask(topology, d.shape) if mask is None else texel_mask(mask, d.shape)
        disp_info = write_displacement(folder, d, m)
        result["displacement"] = {k: v for k, v in disp_info.items() if k != "files"}
        result["files"] += disp_info["files"]
        nmap = normal_map_from_displacement(vertices, topology, d, normal_size, m)
        write_normal_map(folder, nmap, normal_bits)
        result["files"].append("normal.png")
        result["normal_map"] = {"convention": NORMAL_CONVENTION, "size": list(nmap.shape[:2]), "bits": normal_bits}
    if albedo is not None:
        a = as_numpy(albedo)
        if a.ndim == 2 and a.shape == (topology.num_vertices, 3):  # per-vertex albedo: render it into UV
            a, amask = albedo_map_from_vertices(a, topology, albedo_size)
        else:
            amask = uv_mask(topology, tuple(a.shape[-2:]))
        write_albedo(folder, a, amask, linear=albedo_linear)
        result["files"].append("albedo.png")
    textures = face_textures(folder, disp_info, files=result["files"])
    write_material(folder, topology, mtl_stem, textures)
    result["files"].append(f"{mtl_stem}.mtl")
    if displacement is not None and detail_levels:
        path = write_detail_mesh(folder, vertices, topology, displacement, levels=detail_levels,
                                 region=detail_region, textures=detail_textures(files=result["files"]))
        result["files"] += [path.name, path.with_suffix(".mtl").name]
    return result

"""``mesh_detail.obj`` / ``mesh_detail.mtl``: mesh.obj linearly subdivided and displaced by the displacement
map, with the same UVs, materials, frame and units (cm). The geometry is :mod:`fitter.model.subdivision`;
this module supplies what it needs from the renderer (smooth normals, the map's UV islands) and writes it."""
from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..common.arrays import one_frame_vertices, scalar_map
from ..model.subdivision import detail_mesh_arrays
from ..model.topology import FACE_MATERIAL, Topology
from .material import detail_textures
from .obj import write_obj
from .tangents import vertex_normals_np
from .uv_layout import uv_mask


def write_detail_mesh(folder: Path, vertices, topology: Topology, disp_cm, levels: int = 2, region="face",
                      stem: str = "mesh_detail", textures: dict | None = None, mask=None,
                      material: str | None = FACE_MATERIAL, normals=None) -> Path:
    """Write ``<stem>.obj`` + ``<stem>.mtl`` with the subdivided, displaced mesh; returns the OBJ path. Same
    frame and units (cm) as mesh.obj, same material names as mesh.mtl.

    normals default to mesh.obj's area-weighted vertex normals (:func:`fitter.render.vertex_normals`); mask
    (the map's valid texels) to the face material's UV coverage, as for displacement.exr. ``textures``
    default to :func:`fitter.export.material.detail_textures` of ``folder``: the albedo only — the detail is
    in the geometry, so the normal and displacement maps (made for mesh.obj) must not be applied again."""
    folder = Path(folder)
    V = one_frame_vertices(vertices)
    normals = vertex_normals_np(V, topology.triangles) if normals is None else normals
    if disp_cm is not None and mask is None:
        mask = uv_mask(topology, scalar_map(disp_cm).shape, material)
    mesh = detail_mesh_arrays(V, topology, disp_cm, levels, region, mask, material, normals)
    if textures is None:
        textures = detail_textures(folder)
    header = (f"facefit {__version__}: mesh.obj subdivided {levels}x (linear) in region {region or 'all'} and "
              f"displaced along its interpolated vertex normals by displacement.exr\n"
              f"units: cm; axes: x right, y up, z towards the viewer (model frame, as mesh.obj); "
              f"{mesh.num_vertices} vertices, {len(mesh.polygons)} polygons")
    return write_obj(folder, stem, mesh.vertices, topology, header=header, textures=textures,
                     polygons=mesh.polygons, polygon_uvs=mesh.polygon_uvs,
                     polygon_material=mesh.polygon_material, uvs=mesh.uvs)

"""fitter.render: a differentiable mesh renderer that installs everywhere.

rasterize -> Fragments -> interpolate / shade / antialias, plus UV-space rasterization. The built-in backend
(numba z-buffer + torch barycentrics) ships with a plain pip install; pytorch3d is used automatically for
visibility when it imports and the tensors are on CUDA. See docs/renderer.md.
"""
from .silhouette import antialias, crossing_positions, silhouette_crossings, soft_mask, triangle_adjacency
from .fragments import Fragments
from .interp import interpolate, interpolate_packed, sample_texture
from .raster import BACKENDS, fragments_from_triangle_id, project_vertices, rasterize, resolve_backend
from .shading import (
    SH_GREY,
    SH_NEUTRAL,
    coverage_mask,
    face_normals,
    pixel_normals,
    render_labels,
    sh_basis,
    sh_directional,
    sh_rotation,
    sh_shading,
    shade_grey,
    vertex_normals,
)
from .uv import UVFragments, dilate_uv, render_uv, uv_fragments

__all__ = [
    "BACKENDS",
    "Fragments",
    "SH_GREY",
    "SH_NEUTRAL",
    "UVFragments",
    "antialias",
    "coverage_mask",
    "crossing_positions",
    "dilate_uv",
    "face_normals",
    "fragments_from_triangle_id",
    "interpolate",
    "interpolate_packed",
    "pixel_normals",
    "project_vertices",
    "rasterize",
    "render_labels",
    "render_uv",
    "resolve_backend",
    "sample_texture",
    "sh_basis",
    "sh_directional",
    "sh_rotation",
    "sh_shading",
    "shade_grey",
    "silhouette_crossings",
    "soft_mask",
    "triangle_adjacency",
    "uv_fragments",
    "vertex_normals",
]

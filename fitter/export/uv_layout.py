"""The UV layout every exported map shares: the face material's tile, which triangles cover it, which texels.

Layout (the same as :func:`fitter.render.render_uv` / :func:`fitter.render.sample_texture`): a map covers the
UV tile of the face material (``M_Face``, u in [0, 1], UDIM 1001); texel (row r, column c) is centred at
u = (c + 0.5) / W, v = 1 - (r + 0.5) / H, so row 0 is v = 1: the top row of every image file written.
"""
from __future__ import annotations

import numpy as np

from ..model.topology import FACE_MATERIAL, Topology
from ..render import uv_fragments

UV_LAYOUT = "UDIM 1001 (u in [0,1]) of mesh.obj's M_Face material; row 0 is v = 1 (top of the image)"


def face_triangles(topology: Topology, material: str | None = FACE_MATERIAL) -> np.ndarray:
    """Triangles that the face maps cover: those of ``material`` when the model has it, else every triangle
    whose UVs lie in tile 0 (u in [0, 1])."""
    if material and material in topology.material_names:
        return topology.material_triangles(material)
    u = topology.uvs[topology.triangle_uvs][..., 0]
    return np.flatnonzero(((u >= 0) & (u <= 1)).all(1))


def uv_mask(topology: Topology, size, material: str | None = FACE_MATERIAL) -> np.ndarray:
    """(H, W) bool: texels of the face tile covered by the face material's UV islands."""
    return uv_fragments(topology.triangle_uvs, topology.uvs, size, face_triangles(topology, material)).mask.numpy()

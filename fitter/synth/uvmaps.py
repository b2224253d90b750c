"""The model's UV layout as the wild textures need it: per-texel mean-shape positions, coverage, and where
the facial features (landmarks) lie in texels. Static per model and texture size, so computed once.

ICT puts the face (with the front of the scalp, the ears and the neck) in UV tile 0 and the back of the head
in tile 1; texture row 0 is v = 1 (texel centres as in fitter.render.render_uv / sample_texture).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..model.morphable import MorphableModel
from ..render import render_uv

SKIN_MATERIALS = ("M_Face", "M_BackHead")  # tile 0, tile 1


def vertex_uvs(model: MorphableModel) -> np.ndarray:
    """One UV per vertex (its first polygon corner's): exact inside the face's single UV island."""
    topo = model.topology
    out = np.zeros((topo.num_vertices, 2), np.float32)
    valid = topo.polygons >= 0
    out[topo.polygons[valid][::-1]] = topo.uvs[topo.polygon_uvs[valid][::-1]]
    return out


@dataclass(frozen=True)
class UVGeometry:
    """Per texel of both skin tiles (2, S, S): the mean shape's model-frame position (cm) and coverage; the
    68 iBUG landmarks in tile-0 texel coordinates (column, row); texels per centimetre on the cheek."""

    position: np.ndarray  # (2, S, S, 3) float32
    covered: np.ndarray  # (2, S, S) bool
    landmarks: np.ndarray  # (68, 2) float32 (x = column, y = row) in tile 0
    texels_per_cm: float

    @property
    def size(self) -> int:
        return self.position.shape[1]


@functools.lru_cache(maxsize=4)
def uv_geometry(model: MorphableModel, size: int) -> UVGeometry:
    topo = model.topology
    mean = model.mean.detach().cpu().float()
    positions, covered = [], []
    for tile, material in enumerate(SKIN_MATERIALS):
        maps, mask = render_uv(mean, topo.triangles, topo.triangle_uvs, topo.uvs, size,
                               topo.material_triangles(material), tile=tile)
        positions.append(maps[0].permute(1, 2, 0).numpy())
        covered.append(mask.numpy())
    uv = vertex_uvs(model)[topo.landmarks68]
    lm = np.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size], 1).astype(np.float32)
    # texel spacing on the cheek, between the eye corner and the mouth corner (a flat, well-sampled area)
    pos = positions[0]
    r, c = int(lm[[36, 48], 1].mean()), int(lm[[36, 48], 0].mean())
    step = np.linalg.norm(pos[r, c + 4] - pos[r, c - 4]) / 8
    return UVGeometry(np.stack(positions), np.stack(covered), lm, float(1.0 / max(step, 1e-6)))

"""Rasterization in UV space: per-texel (triangle, barycentrics) and attribute maps (positions, normals, ...).

A UV map of size (S, S) covers one UDIM tile, u in [tile, tile + 1], v in [0, 1] (OBJ convention, v up).
Texel (row r, column c) has its centre at u = tile + (c + 0.5) / S, v = 1 - (r + 0.5) / S — the same
convention as :func:`fitter.render.sample_texture` (grid_sample, ``align_corners=False``), so a map rendered
here and sampled there round-trips. A texel belongs to a triangle when its centre lies inside the
triangle's UV image (closed); where UV triangles overlap (the eyeballs reuse tile 0 with their own
materials: pass ``triangle_subset``) the lowest triangle index wins. Barycentrics are affine in UV space.

The texel -> (triangle, barycentrics) table depends only on the UV layout, so it is computed once (numba)
and cached; the attribute maps are then a differentiable gather + weighted sum in torch.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..common.filters import dilate_islands as dilate_uv  # noqa: F401 (the one island dilation)
from ..common.compiled import num_threads, run_parallel, split
from . import _kernels


@dataclass
class UVFragments:
    """Per texel of an (S, S) UV map: triangle id (S, S) int64 (index into the *full* triangle list, -1 where
    no triangle), barycentrics (S, S, 3) float32 (0 where uncovered), and mask (S, S) bool."""

    triangle_id: torch.Tensor
    bary: torch.Tensor
    mask: torch.Tensor
    tile: int = 0

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.triangle_id.shape)

    def to(self, device) -> "UVFragments":
        return UVFragments(self.triangle_id.to(device), self.bary.to(device), self.mask.to(device), self.tile)


def _as_size(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def uv_fragments(
    triangle_uvs: torch.Tensor | np.ndarray,
    uvs: torch.Tensor | np.ndarray,
    size: int | tuple[int, int] = 1024,
    triangle_subset: torch.Tensor | np.ndarray | None = None,
    tile: int = 0,
) -> UVFragments:
    """Which triangle, with which barycentrics, each texel of the UV map shows (CPU tensors; cached).

    triangle_uvs: (T, 3) indices into uvs (U, 2), e.g. ``Topology.triangle_uvs`` / ``Topology.uvs``.
    triangle_subset: optional triangle indices (or a (T,) bool mask) to rasterize, e.g.
    ``topology.material_triangles("M_Face")`` or ``topology.triangles_in(topology.region("face"))``.
    """
    tuv = np.ascontiguousarray(torch.as_tensor(triangle_uvs).cpu().numpy().astype(np.int64))
    uv = np.ascontiguousarray(torch.as_tensor(uvs).cpu().numpy().astype(np.float64))
    if triangle_subset is None:
        subset = np.arange(len(tuv), dtype=np.int64)
    else:
        subset = np.asarray(torch.as_tensor(triangle_subset).cpu().numpy())
        subset = np.flatnonzero(subset) if subset.dtype == bool else subset.astype(np.int64)
    H, W = _as_size(size)
    tid, bary = _uv_table(tuv.tobytes(), tuv.shape[0], uv.tobytes(), uv.shape[0], subset.tobytes(), H, W, tile)
    tid_t = torch.from_numpy(tid.copy())
    return UVFragments(tid_t, torch.from_numpy(bary.copy()), tid_t >= 0, tile)


@functools.lru_cache(maxsize=16)
def _uv_table(tuv_b, n_tri, uv_b, n_uv, subset_b, H, W, tile):
    tuv = np.frombuffer(tuv_b, np.int64).reshape(n_tri, 3)
    uv = np.frombuffer(uv_b, np.float64).reshape(n_uv, 2)
    subset = np.frombuffer(subset_b, np.int64)
    tris = np.ascontiguousarray(tuv[subset])
    xy = np.empty((1, n_uv, 2))
    xy[0, :, 0] = (uv[:, 0] - tile) * W
    xy[0, :, 1] = (1.0 - uv[:, 1]) * H
    z = np.ones((1, n_uv))
    tri_id = np.full((1, H, W), -1, np.int64)
    zbuf = np.full((1, H, W), np.inf)
    if len(tris):

        def band(r0, r1):
            _kernels.zbuffer(xy, z, tris, H, W, 0, 0.0, 0, r0, r1, tri_id, zbuf)

        run_parallel(band, split(H, num_threads()))
    tri_id = tri_id[0]
    covered = tri_id >= 0
    bary = np.zeros((H, W, 3), np.float32)
    if covered.any():
        rows, cols = np.nonzero(covered)
        corner = xy[0][tris[tri_id[covered]]]  # (N, 3, 2)
        dx = corner[..., 0] - (cols + 0.5)[:, None]
        dy = corner[..., 1] - (rows + 0.5)[:, None]
        e = np.roll(dx, -1, 1) * np.roll(dy, -2, 1) - np.roll(dx, -2, 1) * np.roll(dy, -1, 1)
        bary[covered] = (e / e.sum(1, keepdims=True)).astype(np.float32)
    full_id = np.where(covered, subset[np.maximum(tri_id, 0)], -1)
    full_id.setflags(write=False)
    bary.setflags(write=False)
    return full_id, bary


def render_uv(
    attributes: torch.Tensor,
    triangles: torch.Tensor | np.ndarray,
    triangle_uvs: torch.Tensor | np.ndarray,
    uvs: torch.Tensor | np.ndarray,
    size: int | tuple[int, int] = 1024,
    triangle_subset: torch.Tensor | np.ndarray | None = None,
    tile: int = 0,
    uv_frags: UVFragments | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render per-vertex attributes into UV space.

    attributes: (F, V, C), (1, V, C) or (V, C) indexed by ``triangles`` (T, 3) — vertex positions for a
    position map, vertex normals for a normal map, colours, labels... ``triangle_uvs``/``uvs``/``size``/
    ``triangle_subset``/``tile`` select the UV layout and tile (see :func:`uv_fragments`; pass ``uv_frags``
    to reuse one). Returns ``(maps, mask)``: maps (F, C, S, S) (channels first, ready for
    :func:`fitter.render.sample_texture`), 0 outside the mask; mask (S, S) bool. Differentiable w.r.t. the
    attributes. A normal map made from vertex normals should be renormalised per texel.
    """
    if uv_frags is None:
        uv_frags = uv_fragments(triangle_uvs, uvs, size, triangle_subset, tile)
    device = attributes.device
    if attributes.dim() == 2:
        attributes = attributes[None]
    triangles = torch.as_tensor(triangles, device=device).long()
    tid = uv_frags.triangle_id.to(device)
    covered = torch.nonzero(tid.reshape(-1) >= 0).squeeze(1)
    vid = triangles[tid.reshape(-1)[covered]]  # (N, 3)
    bary = uv_frags.bary.to(device=device, dtype=attributes.dtype).reshape(-1, 3)[covered]  # (N, 3)
    values = (attributes[:, vid] * bary[None, :, :, None]).sum(2)  # (F, N, C)
    F, C = attributes.shape[0], attributes.shape[-1]
    H, W = uv_frags.size
    out = attributes.new_zeros(F, H * W, C).index_copy(1, covered, values)
    return out.reshape(F, H, W, C).permute(0, 3, 1, 2), uv_frags.mask.to(device)

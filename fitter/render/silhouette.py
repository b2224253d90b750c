"""Analytic antialiasing of silhouettes, which is what gives silhouette gradients.

The hard rasterizer's output is piecewise constant in the vertex positions as far as *coverage* goes: a
pixel is either covered by a triangle or not, so terms that compare masks, part labels or colours across an
outline (segmentation / PRDL, mask IoU, photometric terms near the outline) get no gradient that would move
the outline. :func:`antialias` fixes that in the spirit of nvdiffrast's antialiasing (Laine et al. 2020):

1. For every pair of 4-neighbour pixels showing different triangles, a compiled kernel walks the mesh from
   the front pixel's triangle along the segment joining the two pixel centres until it leaves the surface
   through a *silhouette edge* (a border edge of the rendered triangles, or an edge between a clockwise and
   a counter-clockwise triangle on screen). Pairs are kept along the edge's minor axis only (horizontal
   pairs for steep edges, vertical pairs for flat ones) so each edge is counted once. Occlusion boundaries
   inside the image (nose over cheek) are handled the same way as outlines against the background.
2. In torch, the position s in [0, 1] where that edge's line crosses the segment (measured from the front
   pixel) is computed from the projected vertices, and the two pixels are blended: the back pixel takes
   (s - 1/2) of the front colour when s > 1/2, the front pixel takes (1/2 - s) of the back colour when
   s < 1/2. For a straight edge this is the exact area coverage of each pixel row (column), so the sum of
   an antialiased mask equals the projected area up to the corners.

Gradients then flow through s to the two vertices of the silhouette edge (and through the blended colours
to whatever produced the image). Silhouette triangles too thin to cover a pixel centre are found by the walk;
triangles seen at no pixel at all behind an edge are not (they would need a second layer).
The walk runs on the CPU (numba); on CUDA the triangle ids and projected vertices are copied to the host.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..common.compiled import num_threads, run_parallel, split
from . import _kernels
from .fragments import Fragments

MAX_WALK_STEPS = 16


@functools.lru_cache(maxsize=8)
def _adjacency_cached(key: bytes, n: int) -> np.ndarray:
    return _kernels.triangle_adjacency(np.frombuffer(key, np.int64).reshape(n, 3))


def triangle_adjacency(triangles: torch.Tensor | np.ndarray) -> np.ndarray:
    """(T, 3) index of the triangle across edge (tri[k], tri[k+1]), -1 on borders (cached per mesh)."""
    tris = np.ascontiguousarray(torch.as_tensor(triangles).cpu().numpy().astype(np.int64))
    return _adjacency_cached(tris.tobytes(), len(tris))


def silhouette_crossings(frags: Fragments) -> dict[str, torch.Tensor]:
    """Pixel pairs straddling a silhouette edge (cached on the fragments).

    Returns ``first`` (M,) flat index of the top/left pixel of each pair, ``second`` (M,), ``vertical``
    (M,) bool, ``front_second`` (M,) bool (the covered/nearer pixel is the second one), ``a``, ``b`` (M,)
    vertex indices of the silhouette edge.
    """
    if frags._crossings is not None:
        return frags._crossings
    F, (H, W) = frags.frames, frags.image_size
    device = frags.device
    tri_id = np.ascontiguousarray(frags.triangle_id.to("cpu", torch.int64).numpy())
    zbuf = np.full(F * H * W, np.inf)
    zbuf[frags.pix_index.cpu().numpy()] = frags.pix_depth.detach().to("cpu", torch.float64).numpy()
    zbuf = zbuf.reshape(F, H, W)
    screen = frags.verts_screen.detach().to("cpu", torch.float64)
    xy = np.ascontiguousarray(screen[..., :2].numpy())
    z = np.ascontiguousarray(screen[..., 2].numpy())
    tris = np.ascontiguousarray(frags.triangles.to("cpu", torch.int64).numpy())
    adj = triangle_adjacency(tris)
    # slots: one per pair of different neighbours, grouped by row so the kernel runs rows in parallel
    horiz = (tri_id[:, :, 1:] != tri_id[:, :, :-1]).sum(-1)  # (F, H)
    vert = np.zeros((F, H), np.int64)
    vert[:, :-1] = (tri_id[:, 1:, :] != tri_id[:, :-1, :]).sum(-1)
    per_row = (horiz + vert).reshape(-1)
    row_offset = np.zeros(F * H + 1, np.int64)
    np.cumsum(per_row, out=row_offset[1:])
    m = int(row_offset[-1])
    first = np.empty(m, np.int64)
    code = np.empty(m, np.int64)
    a = np.empty(m, np.int64)
    b = np.empty(m, np.int64)
    ok = np.zeros(m, np.bool_)
    if m:
        near = float(frags.near)

        def rows(begin, end):
            _kernels.silhouette_crossings(
                tri_id, zbuf, xy, z, tris, adj, near, MAX_WALK_STEPS, row_offset, begin, end, first, code, a, b, ok
            )

        run_parallel(rows, split(F * H, 4 * num_threads()))
    first, code, a, b = first[ok], code[ok], a[ok], b[ok]
    vertical = (code & 1).astype(bool)
    second = first + np.where(vertical, W, 1)
    out = {
        "first": torch.from_numpy(first).to(device),
        "second": torch.from_numpy(second).to(device),
        "vertical": torch.from_numpy(vertical).to(device),
        "front_second": torch.from_numpy((code & 2).astype(bool)).to(device),
        "a": torch.from_numpy(a).to(device),
        "b": torch.from_numpy(b).to(device),
    }
    frags._crossings = out
    return out


def crossing_positions(frags: Fragments, crossings: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """(M,) position s in [0, 1] of each silhouette crossing, from the front pixel centre (differentiable)."""
    c = silhouette_crossings(frags) if crossings is None else crossings
    F, (H, W) = frags.frames, frags.image_size
    V = frags.verts_screen.shape[1]
    f = torch.div(c["first"], H * W, rounding_mode="floor")
    rem = c["first"] - f * (H * W)
    i = torch.div(rem, W, rounding_mode="floor")
    j = rem - i * W
    xy = frags.verts_screen[..., :2].reshape(F * V, 2)
    A, B = xy[f * V + c["a"]], xy[f * V + c["b"]]
    dtype = xy.dtype
    cx, cy = j.to(dtype) + 0.5, i.to(dtype) + 0.5
    d = B - A
    # horizontal pair: the line's x at the row centre, relative to the left pixel centre (|dy| > 0 there);
    # vertical pair: the line's y at the column centre, relative to the top pixel centre (|dx| > 0 there).
    vertical = c["vertical"]
    num = torch.where(vertical, d[:, 1] * (cx - A[:, 0]), d[:, 0] * (cy - A[:, 1]))
    den = torch.where(vertical, d[:, 0], d[:, 1])
    base = torch.where(vertical, A[:, 1] - cy, A[:, 0] - cx)
    den = torch.where(den == 0, torch.ones_like(den), den)
    s_first = base + num / den  # from the first (top/left) pixel towards the second
    s = torch.where(c["front_second"], 1.0 - s_first, s_first)
    return s.clamp(0.0, 1.0)


def antialias(image: torch.Tensor, frags: Fragments) -> torch.Tensor:
    """Antialias silhouettes of a rendered image (F, H, W, C), differentiably w.r.t. the vertex positions.

    ``image`` is anything rendered with these fragments, composited over its background: colours, a grey
    render, a coverage mask, one-hot part labels, or the render pasted over the photo. Returns an image of
    the same shape. Interior pixels away from silhouettes are unchanged.
    """
    F, (H, W) = frags.frames, frags.image_size
    if image.shape[:3] != (F, H, W):
        raise ValueError(f"image must be ({F}, {H}, {W}, C), got {tuple(image.shape)}")
    c = silhouette_crossings(frags)
    if c["first"].numel() == 0:
        return image
    s = crossing_positions(frags, c).to(image.dtype)
    front = torch.where(c["front_second"], c["second"], c["first"])
    back = torch.where(c["front_second"], c["first"], c["second"])
    flat = image.reshape(F * H * W, image.shape[-1])
    col_front, col_back = flat[front], flat[back]
    diff = col_front - col_back
    gain_back = (s - 0.5).clamp(min=0.0)[:, None] * diff
    lose_front = (0.5 - s).clamp(min=0.0)[:, None] * diff
    out = flat.index_add(0, back, gain_back).index_add(0, front, -lose_front)
    return out.reshape(image.shape)


def soft_mask(frags: Fragments) -> torch.Tensor:
    """Antialiased coverage (F, H, W) in [0, 1]: the fraction of each pixel covered by the projected mesh,
    differentiable w.r.t. the vertex positions at the outline (see the module notes)."""
    mask = frags.mask[..., None].to(frags.dtype)
    return antialias(mask, frags)[..., 0].clamp(0.0, 1.0)

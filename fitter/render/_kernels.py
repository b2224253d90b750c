"""Compiled (numba) parts of the built-in backend: the discrete decisions only.

Nothing here is differentiable and nothing here needs to be: the kernels decide *which* triangle is seen at
each pixel (z-buffer) and *which* mesh edge a silhouette crossing belongs to (antialiasing). Every quantity
that carries gradients (barycentrics, depth, crossing positions) is recomputed in torch from the projected
vertices, see :mod:`fitter.render.raster` and :mod:`fitter.render.silhouette`.

All kernels take float64 coordinates and int64 indices so each compiles exactly once (one signature). How
they are compiled, cached and run on threads: :mod:`fitter.common.compiled`.
"""
from __future__ import annotations

import math

import numpy as np

from ..common.compiled import njit_cached


# --------------------------------------------------------------------------------------------------------
# Z-buffer
# --------------------------------------------------------------------------------------------------------
@njit_cached(nogil=True)
def zbuffer(xy, z, tris, height, width, cull, near, f, r0, r1, tri_id, zbuf):  # pragma: no cover - compiled
    """Nearest triangle per pixel centre, for frame ``f`` and image rows [r0, r1).

    xy (F, V, 2) pixel coordinates, z (F, V) camera depth, tris (T, 3); cull: 0 none, 1 back faces
    (positive signed area in y-down pixel coordinates: they look clockwise in the image). Triangles with
    any vertex at z <= near are skipped. Triangles are visited in order and a pixel belongs to one row band
    only, so the result does not depend on how the image is split between threads. Ties (equal depth) keep the lower
    triangle index. A pixel centre exactly on an edge counts as inside. Writes tri_id (F, H, W) (left -1
    where empty) and zbuf (F, H, W) (left inf where empty). Releases the GIL: callers run bands in threads.
    """
    n_tris = tris.shape[0]
    if r0 < r1:
        for t in range(n_tris):
            a = tris[t, 0]
            b = tris[t, 1]
            c = tris[t, 2]
            za = z[f, a]
            zb = z[f, b]
            zc = z[f, c]
            if not (za > near and zb > near and zc > near):
                continue
            xa = xy[f, a, 0]
            ya = xy[f, a, 1]
            xb = xy[f, b, 0]
            yb = xy[f, b, 1]
            xc = xy[f, c, 0]
            yc = xy[f, c, 1]
            if not math.isfinite(xa + ya + xb + yb + xc + yc):
                continue
            ymin = min(ya, min(yb, yc))
            ymax = max(ya, max(yb, yc))
            # rows whose centre i + 0.5 lies in [ymin, ymax], clipped to this band
            fi0 = max(np.ceil(ymin - 0.5), float(r0))
            fi1 = min(np.floor(ymax - 0.5), float(r1 - 1))
            if not fi0 <= fi1:
                continue
            xmin = min(xa, min(xb, xc))
            xmax = max(xa, max(xb, xc))
            fj0 = max(np.ceil(xmin - 0.5), 0.0)
            fj1 = min(np.floor(xmax - 0.5), float(width - 1))
            if not fj0 <= fj1:
                continue
            area = (xb - xa) * (yc - ya) - (xc - xa) * (yb - ya)
            if area == 0.0 or not math.isfinite(area):
                continue
            if cull and area > 0.0:
                continue
            inv_area = 1.0 / area
            iza = 1.0 / za
            izb = 1.0 / zb
            izc = 1.0 / zc
            i0 = int(fi0)
            i1 = int(fi1)
            j0 = int(fj0)
            j1 = int(fj1)
            for i in range(i0, i1 + 1):
                py = i + 0.5
                for j in range(j0, j1 + 1):
                    px = j + 0.5
                    w0 = ((xb - px) * (yc - py) - (xc - px) * (yb - py)) * inv_area
                    if w0 < 0.0:
                        continue
                    w1 = ((xc - px) * (ya - py) - (xa - px) * (yc - py)) * inv_area
                    if w1 < 0.0:
                        continue
                    w2 = 1.0 - w0 - w1
                    if w2 < 0.0:
                        continue
                    depth = 1.0 / (w0 * iza + w1 * izb + w2 * izc)
                    if depth < zbuf[f, i, j]:
                        zbuf[f, i, j] = depth
                        tri_id[f, i, j] = t


# --------------------------------------------------------------------------------------------------------
# Silhouette crossings for antialiasing
# --------------------------------------------------------------------------------------------------------
@njit_cached(nogil=True)
def _signed_area(xy, f, tris, t):  # pragma: no cover - compiled
    a = tris[t, 0]
    b = tris[t, 1]
    c = tris[t, 2]
    return (xy[f, b, 0] - xy[f, a, 0]) * (xy[f, c, 1] - xy[f, a, 1]) - (xy[f, c, 0] - xy[f, a, 0]) * (
        xy[f, b, 1] - xy[f, a, 1]
    )


@njit_cached(nogil=True)
def _usable(z, f, tris, t, near):  # pragma: no cover - compiled
    return z[f, tris[t, 0]] > near and z[f, tris[t, 1]] > near and z[f, tris[t, 2]] > near


@njit_cached(nogil=True)
def _walk(xy, z, tris, adj, f, t, px, py, qx, qy, near, max_steps, out):  # pragma: no cover - compiled
    """Walk the mesh from triangle t (seen at pixel centre p) along the segment p -> q.

    Returns True and writes (vertex a, vertex b) of the first silhouette edge the segment crosses into
    ``out``; returns False when the segment ends inside the surface or no silhouette is found within
    ``max_steps`` triangles. A silhouette edge is a border edge of the rendered triangles, an edge whose
    neighbour is skipped (near plane), or an edge between a clockwise and a counter-clockwise triangle on
    screen (a contour fold; with back-face culling the back-facing neighbour is culled anyway).
    """
    prev = -1
    for _ in range(max_steps):
        area = _signed_area(xy, f, tris, t)
        if area == 0.0 or not math.isfinite(area):
            return False
        sign = 1.0 if area > 0.0 else -1.0
        best_s = 2.0
        best_k = -1
        for k in range(3):
            if prev >= 0 and adj[t, k] == prev:
                continue  # the edge we came in through
            va = tris[t, k]
            vb = tris[t, (k + 1) % 3]
            ex = xy[f, vb, 0] - xy[f, va, 0]
            ey = xy[f, vb, 1] - xy[f, va, 1]
            ep = sign * (ex * (py - xy[f, va, 1]) - ey * (px - xy[f, va, 0]))
            eq = sign * (ex * (qy - xy[f, va, 1]) - ey * (qx - xy[f, va, 0]))
            if eq < 0.0:
                s = max(ep, 0.0) / (max(ep, 0.0) - eq)
                if s < best_s:
                    best_s = s
                    best_k = k
        if best_k < 0:
            return False  # q lies on this triangle: same surface, no silhouette in between
        n = adj[t, best_k]
        silhouette = n < 0
        if not silhouette:
            if not _usable(z, f, tris, n, near):
                silhouette = True
            else:
                other = _signed_area(xy, f, tris, n)
                silhouette = (other > 0.0) != (area > 0.0) or other == 0.0
        if silhouette:
            out[0] = tris[t, best_k]
            out[1] = tris[t, (best_k + 1) % 3]
            return True
        prev = t
        t = n
    return False


@njit_cached(nogil=True)
def silhouette_crossings(
    tri_id, zbuf, xy, z, tris, adj, near, max_steps, row_offset, row_begin, row_end, out_first, out_code, out_a,
    out_b, out_ok
):  # pragma: no cover - compiled
    """For every pair of 4-neighbour pixels showing different triangles, find the silhouette edge between.

    Processes the image rows [row_begin, row_end) of the F * H rows. Pairs are (i, j)-(i, j+1)
    ("horizontal", code bit 0 clear) and (i, j)-(i+1, j) ("vertical", bit 0 set). The front pixel is the
    covered one, or the nearer one when both are covered (bit 1 set when the front pixel is the second of
    the pair). A crossing is kept only when the pair runs along the edge's minor axis (horizontal pairs for
    edges steeper than 45 degrees, vertical pairs otherwise) so each straight edge is counted once. Slots
    for row r start at row_offset[r]; out_ok marks the slots that hold a crossing. Releases the GIL.
    """
    n_frames, height, width = tri_id.shape
    edge = np.empty(2, np.int64)
    for r in range(row_begin, row_end):
        f = r // height
        i = r % height
        slot = row_offset[r]
        for j in range(width):
            t0 = tri_id[f, i, j]
            for direction in range(2):
                if direction == 0:
                    if j + 1 >= width:
                        continue
                    i2 = i
                    j2 = j + 1
                else:
                    if i + 1 >= height:
                        continue
                    i2 = i + 1
                    j2 = j
                t1 = tri_id[f, i2, j2]
                if t0 == t1:
                    continue
                k = slot
                slot += 1
                out_ok[k] = False
                # walk from the front pixel's centre (p) towards the back one's (q)
                if t1 < 0 or (t0 >= 0 and zbuf[f, i, j] <= zbuf[f, i2, j2]):
                    front_second, tf, fi, fj, bi, bj = 0, t0, i, j, i2, j2
                else:
                    front_second, tf, fi, fj, bi, bj = 1, t1, i2, j2, i, j
                px, py, qx, qy = fj + 0.5, fi + 0.5, bj + 0.5, bi + 0.5
                if not _walk(xy, z, tris, adj, f, tf, px, py, qx, qy, near, max_steps, edge):
                    continue
                dx = abs(xy[f, edge[1], 0] - xy[f, edge[0], 0])
                dy = abs(xy[f, edge[1], 1] - xy[f, edge[0], 1])
                if direction == 0:
                    if not (dy >= dx and dy > 0.0):
                        continue
                else:
                    if not (dx > dy):
                        continue
                out_first[k] = (f * height + i) * width + j
                out_code[k] = direction + 2 * front_second
                out_a[k] = edge[0]
                out_b[k] = edge[1]
                out_ok[k] = True


def triangle_adjacency(tris: np.ndarray) -> np.ndarray:
    """(T, 3) neighbour across edge k = (tri[k], tri[k+1]), -1 on borders and non-manifold edges."""
    tris = np.asarray(tris, np.int64)
    n = len(tris)
    adj = np.full((n, 3), -1, np.int64)
    if n == 0:
        return adj
    a = tris.reshape(-1)
    b = tris[:, [1, 2, 0]].reshape(-1)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * (int(tris.max()) + 1) + hi
    order = np.argsort(key, kind="stable")
    sk = key[order]
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    counts = np.diff(np.r_[starts, len(sk)])
    pairs = starts[counts == 2]
    e0, e1 = order[pairs], order[pairs + 1]  # half-edge ids: triangle * 3 + k
    adj.reshape(-1)[e0] = e1 // 3
    adj.reshape(-1)[e1] = e0 // 3
    return adj

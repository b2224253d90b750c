"""Small meshes and map grids shared by the export tests."""
from __future__ import annotations

import numpy as np

from fitter.export.tangents import vertex_normals_np
from fitter.model.topology import Topology


def grid_mesh(n=8, size=(4.0, 2.0), mirror_u=False, seam=False):
    """A flat n x n quad grid in the z = 0 plane, x in [0, size[0]], y in [0, size[1]], UVs (x, y) scaled to
    [0, 1]^2 (u mirrored with ``mirror_u``). ``seam``: the right half (columns >= n / 2) is a separate UV
    island shifted by +0.01 in u, so the vertices of the middle column have two UVs each."""
    xs, ys = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    verts = np.stack([xs.ravel() * size[0], ys.ravel() * size[1], np.zeros(xs.size)], 1)
    uv = np.stack([1 - xs.ravel() if mirror_u else xs.ravel(), ys.ravel()], 1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    polys = np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()], 1)
    puvs = polys.copy()
    if seam:
        right_uv = uv + np.array([0.01, 0.0])  # a second copy of every UV, used by the right half
        uv = np.concatenate([uv, right_uv])
        right = (np.arange(len(polys)) % n) >= n // 2
        puvs[right] += len(verts)
    topo = Topology(polys.astype(np.int32), puvs.astype(np.int32), np.zeros(len(polys), np.int64), ["M_Face"],
                    uv.astype(np.float64), len(verts))
    return verts, topo


def texel_uv(S):
    """(u, v) of the texel centres of an S x S map, row 0 at v = 1."""
    r, c = np.mgrid[0:S, 0:S]
    return (c + 0.5) / S, 1 - (r + 0.5) / S


def rotation(a=0.5, b=0.7, c=0.9):
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", [a, b, c]).as_matrix()


def smooth_normals(vertices, topology):
    """The area-weighted vertex normals the exports displace along."""
    return vertex_normals_np(np.asarray(vertices, np.float64), topology.triangles)

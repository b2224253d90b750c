"""Tangent frames of a mesh's UV layout (the frame of the exported tangent-space normal map), and the
smooth vertex normals they are built on, as numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..common.arrays import as_numpy, one_frame_vertices, unit_vectors
from ..model.topology import Topology
from ..render import vertex_normals
from ..render.bump import uv_tangents

# A triangle whose UV area is below this fraction of the median one is degenerate in UV space: it gives no
# tangent direction and is skipped.
DEGENERATE_UV_AREA = 1e-14
# A wedge whose accumulated tangent is shorter than this has no usable triangle: it gets any perpendicular.
MIN_TANGENT_LENGTH = 1e-12


def vertex_normals_np(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) float64: :func:`fitter.render.vertex_normals` on numpy input."""
    v = torch.from_numpy(np.ascontiguousarray(vertices, np.float64))[None]
    return vertex_normals(v, torch.as_tensor(np.asarray(triangles, np.int64)))[0].numpy()


@dataclass
class TangentFrames:
    """Tangent frames of a mesh's UV layout, one per *wedge*: a (vertex, UV) pair — an OBJ ``v/vt`` corner.

    A vertex inside a UV island has one wedge; a vertex on a UV seam has one wedge per island, each with its
    own tangent (the UV directions differ across the seam) and the same normal. ``per_vertex()`` averages
    them for code that wants one frame per vertex.

    tangent, bitangent, normal: (W, 3) unit vectors, orthonormal; bitangent = sign * cross(normal, tangent).
    sign: (W,) +1 / -1 (handedness: -1 where the UVs are mirrored). wedge_vertex / wedge_uv: (W,) indices.
    triangle_wedges: (T, 3) wedge of each corner of ``topology.triangles``. triangle_du / triangle_dv:
    (T, 3) dp/du and dp/dv of each triangle (cm per UV unit; zero for degenerate UV triangles).
    """

    tangent: np.ndarray
    bitangent: np.ndarray
    normal: np.ndarray
    sign: np.ndarray
    wedge_vertex: np.ndarray
    wedge_uv: np.ndarray
    triangle_wedges: np.ndarray
    triangle_du: np.ndarray
    triangle_dv: np.ndarray
    num_vertices: int

    def per_vertex(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tangent, bitangent, normal), each (V, 3): wedges averaged per vertex, re-orthonormalised
        (exact inside UV islands; a compromise on seams). Unused vertices get zeros."""
        V = self.num_vertices
        normal = np.zeros((V, 3))
        normal[self.wedge_vertex] = self.normal
        t = np.zeros((V, 3))
        np.add.at(t, self.wedge_vertex, self.tangent)
        b = np.zeros((V, 3))
        np.add.at(b, self.wedge_vertex, self.bitangent)
        t = unit_vectors(t - (t * normal).sum(-1, keepdims=True) * normal)
        sign = np.where((np.cross(normal, t) * b).sum(-1) < 0, -1.0, 1.0)
        return t, sign[:, None] * np.cross(normal, t), normal


def _any_perpendicular(n: np.ndarray) -> np.ndarray:
    helper = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    return unit_vectors(np.cross(np.cross(n, helper), n))


def triangle_uv_tangents(corners: np.ndarray, corner_uvs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dp/du, dp/dv, usable) of triangles with corners (T, 3, 3) and UVs (T, 3, 2), from
    :func:`fitter.render.bump.uv_tangents`; degenerate UV triangles (area below
    :data:`DEGENERATE_UV_AREA` of the median) are not usable and get zero tangents."""
    d1, d2 = corner_uvs[:, 1] - corner_uvs[:, 0], corner_uvs[:, 2] - corner_uvs[:, 0]
    uv_area = np.abs(d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1])
    usable = uv_area > DEGENERATE_UV_AREA * max(float(np.median(uv_area)) if len(uv_area) else 0.0, 1e-300)
    su, sv = uv_tangents(torch.from_numpy(np.ascontiguousarray(corners, np.float64)),
                         torch.from_numpy(np.ascontiguousarray(corner_uvs, np.float64)), min_determinant=0.0)
    keep = usable[:, None]
    return np.where(keep, su.numpy(), 0.0), np.where(keep, sv.numpy(), 0.0), usable


def tangent_frames(vertices, topology: Topology, normals=None) -> TangentFrames:
    """MikkTSpace-like tangent frames from the mesh's UVs.

    Per triangle, dp/du (tangent) and dp/dv (bitangent) are solved from its edges and UV edges. At each
    corner both are projected onto the plane of the vertex normal, normalised, and accumulated into the
    corner's wedge weighted by the corner angle. The wedge's tangent is the normalised sum; its sign is that
    of dot(cross(n, t), sum of bitangents), and bitangent = sign * cross(n, t) — what a MikkTSpace shader
    rebuilds (Blender's Normal Map node, Maya, Unreal...). ``normals`` defaults to the area-weighted vertex
    normals of :func:`fitter.render.vertex_normals` over all triangles.

    Differences from the reference MikkTSpace (so DCCs may differ slightly, mostly on UV seams, at mirrored
    or degenerate UVs, and where the DCC's own vertex normals differ from ours): quads are treated as their
    two triangles, wedges are not split further by handedness or by angle, degenerate UV triangles are
    skipped (a wedge with no usable triangle gets an arbitrary perpendicular tangent).
    """
    V = one_frame_vertices(vertices)
    tri = np.asarray(topology.triangles, np.int64)
    tuv = np.asarray(topology.triangle_uvs, np.int64)
    uv = np.asarray(topology.uvs, np.float64)
    U = max(len(uv), 1)
    key = (tri * U + tuv).ravel()
    uniq, inv = np.unique(key, return_inverse=True)
    tw = inv.reshape(tri.shape)
    wv, wuv = uniq // U, uniq % U
    n_vert = unit_vectors(as_numpy(normals).astype(np.float64)) if normals is not None else vertex_normals_np(V, tri)

    p = V[tri]
    su, sv, ok = triangle_uv_tangents(p, uv[tuv])

    n_w = len(uniq)
    t_acc = np.zeros((n_w, 3))
    b_acc = np.zeros((n_w, 3))
    for k in range(3):
        a = p[:, (k + 1) % 3] - p[:, k]
        b = p[:, (k + 2) % 3] - p[:, k]
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
        angle = np.arccos(np.clip(cos, -1.0, 1.0)) * ok
        n = n_vert[tri[:, k]]
        tk = unit_vectors(su - (su * n).sum(1, keepdims=True) * n)
        bk = unit_vectors(sv - (sv * n).sum(1, keepdims=True) * n)
        np.add.at(t_acc, tw[:, k], tk * angle[:, None])
        np.add.at(b_acc, tw[:, k], bk * angle[:, None])
    normal = n_vert[wv]
    tangent = t_acc - (t_acc * normal).sum(1, keepdims=True) * normal
    length = np.linalg.norm(tangent, axis=1)
    bad = length < MIN_TANGENT_LENGTH
    tangent = unit_vectors(tangent)
    if bad.any():
        tangent[bad] = _any_perpendicular(normal[bad])
    sign = np.where((np.cross(normal, tangent) * b_acc).sum(1) < 0, -1.0, 1.0)
    bitangent = sign[:, None] * np.cross(normal, tangent)
    return TangentFrames(tangent, bitangent, normal, sign, wv, wuv, tw, su, sv, topology.num_vertices)

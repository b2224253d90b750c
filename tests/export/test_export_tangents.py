"""Tangent frames of the UV layout (the frame of normal.png): orthonormal, +u / +v on ICT's face, mirrored
UVs, degenerate UV triangles; dp/du and dp/dv from the renderer's one formula."""
from __future__ import annotations

import numpy as np
import torch

from export_meshes import grid_mesh, rotation
from fitter.export.tangents import tangent_frames, triangle_uv_tangents, vertex_normals_np
from fitter.render import vertex_normals


def test_tangent_frames_ict(ict):
    verts = ict.mean.numpy()
    fr = tangent_frames(verts, ict.topology)
    for a, b in [(fr.tangent, fr.tangent), (fr.bitangent, fr.bitangent), (fr.normal, fr.normal)]:
        assert np.allclose((a * b).sum(1), 1, atol=1e-6)
    assert np.abs((fr.tangent * fr.normal).sum(1)).max() < 1e-6
    assert np.abs((fr.bitangent * fr.normal).sum(1)).max() < 1e-6
    assert len(fr.tangent) == len(ict.topology.uvs)  # ICT: one wedge per UV index
    # Where the face looks forward, the tangent (+u) runs along +x and the bitangent (+v) along +y.
    face = np.isin(fr.wedge_vertex, np.unique(ict.topology.polygons[ict.topology.polygon_material == 0]))
    front = face & (fr.normal[:, 2] > 0.9)
    assert front.sum() > 500
    assert np.mean(fr.tangent[front, 0] > 0.9) > 0.9 and np.mean(fr.bitangent[front, 1] > 0.8) > 0.95
    assert np.all(fr.sign[face] == 1)
    t, b, n = fr.per_vertex()
    assert t.shape == (ict.num_vertices, 3)


def test_mirrored_uvs_flip_the_handedness():
    verts, topo = grid_mesh(6, (3.0, 3.0), mirror_u=True)
    fr = tangent_frames(verts, topo)
    assert np.all(fr.sign == -1)
    assert np.allclose(fr.tangent, [-1, 0, 0]) and np.allclose(fr.bitangent, [0, 1, 0])


def test_triangle_uv_tangents_are_the_surface_derivatives():
    # A triangle mapped affinely: p(u, v) = o + u * A + v * B, so dp/du = A and dp/dv = B exactly.
    R = rotation(0.3, -0.2, 0.8)
    A, B, o = np.array([2.0, 0.5, 0.0]) @ R.T, np.array([-0.3, 1.5, 0.4]) @ R.T, np.array([1.0, 2.0, 3.0])
    uv = np.array([[[0.1, 0.2], [0.6, 0.25], [0.3, 0.9]], [[0.5, 0.5], [0.5, 0.5], [0.7, 0.1]]])
    corners = o + uv[..., :1] * A + uv[..., 1:] * B
    su, sv, usable = triangle_uv_tangents(corners, uv)
    assert usable.tolist() == [True, False]  # the second triangle has two corners at one UV
    assert np.allclose(su[0], A) and np.allclose(sv[0], B)
    assert np.all(su[1] == 0) and np.all(sv[1] == 0)


def test_numpy_vertex_normals_are_the_renderers():
    verts, topo = grid_mesh(3, (1.0, 1.0))
    verts = verts + np.random.default_rng(0).normal(0, 0.05, verts.shape)
    want = vertex_normals(torch.as_tensor(verts)[None], topo.triangles)[0].numpy()
    assert np.array_equal(vertex_normals_np(verts, topo.triangles), want)

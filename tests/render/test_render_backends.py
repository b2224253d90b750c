"""Backend choice and the pytorch3d backend, exercised with a fake ``pytorch3d`` module.

pytorch3d cannot be installed on the development machines, so these tests install a stand-in under the
real module names whose rasterizer is written from pytorch3d's documented conventions
(``rasterize_meshes``: pixel (yi, xi) <-> NDC ``pix_to_non_square_ndc(W-1-xi, W, H)``,
``pix_to_non_square_ndc(H-1-yi, H, W)``; ``pix_to_face`` indexes the packed faces; z-buffer on the
perspective-corrected depth). The pixel-exact comparison against the real pytorch3d needs a CUDA machine
with pytorch3d (see docs/renderer.md).
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from fitter.render import _pytorch3d, rasterize, resolve_backend


# -- a stand-in for pytorch3d ------------------------------------------------------------------------------
class FakeMeshes:
    def __init__(self, verts, faces):
        assert isinstance(verts, list) and isinstance(faces, list) and len(verts) == len(faces)
        self._verts, self._faces = verts, faces

    def __len__(self):
        return len(self._verts)

    def verts_packed(self):
        return torch.cat(self._verts)

    def faces_packed(self):
        offsets = np.cumsum([0] + [len(v) for v in self._verts[:-1]])
        return torch.cat([f + int(o) for f, o in zip(self._faces, offsets)])

    def num_faces_per_mesh(self):
        return torch.tensor([len(f) for f in self._faces])

    def mesh_to_faces_packed_first_idx(self):
        counts = self.num_faces_per_mesh()
        return torch.cumsum(counts, 0) - counts


def _pix_to_non_square_ndc(i, S1, S2):
    ndc_range = 2.0 * (S1 / S2 if S1 > S2 else 1.0)
    offset = ndc_range / 2.0
    return -offset + (ndc_range * i + offset) / S1


def _edge(p, v0, v1):
    return (p[0] - v0[0]) * (v1[1] - v0[1]) - (p[1] - v0[1]) * (v1[0] - v0[0])


CALLS = []


def fake_rasterize_meshes(
    meshes,
    image_size=256,
    blur_radius=0.0,
    faces_per_pixel=8,
    bin_size=None,
    max_faces_per_bin=None,
    perspective_correct=False,
    clip_barycentric_coords=False,
    cull_backfaces=False,
    z_clip_value=None,
    cull_to_frustum=False,
):
    CALLS.append(dict(image_size=image_size, faces_per_pixel=faces_per_pixel, perspective_correct=perspective_correct,
                      blur_radius=blur_radius, cull_backfaces=cull_backfaces))  # fmt: skip
    H, W = image_size if isinstance(image_size, tuple) else (image_size, image_size)
    verts = meshes.verts_packed().double().numpy()
    faces = meshes.faces_packed().numpy()
    first = meshes.mesh_to_faces_packed_first_idx().tolist()
    count = meshes.num_faces_per_mesh().tolist()
    yi, xi = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    p = (_pix_to_non_square_ndc(W - 1 - xi, W, H), _pix_to_non_square_ndc(H - 1 - yi, H, W))
    N = len(first)
    pix_to_face = np.full((N, H, W, 1), -1, np.int64)
    zbuf = np.full((N, H, W, 1), -1.0)
    for n in range(N):
        best = np.full((H, W), np.inf)
        for f in range(first[n], first[n] + count[n]):
            v0, v1, v2 = verts[faces[f]]
            area = _edge(v2, v0, v1)
            if area == 0:
                continue
            w = [_edge(p, v1, v2) / area, _edge(p, v2, v0) / area, _edge(p, v0, v1) / area]
            if perspective_correct:
                top = [w[0] * v1[2] * v2[2], v0[2] * w[1] * v2[2], v0[2] * v1[2] * w[2]]
                w = [t / (top[0] + top[1] + top[2]) for t in top]
            pz = w[0] * v0[2] + w[1] * v1[2] + w[2] * v2[2]
            hit = (w[0] > 0) & (w[1] > 0) & (w[2] > 0) & (pz >= 0) & (pz < best)
            best = np.where(hit, pz, best)
            pix_to_face[n, ..., 0][hit] = f
            zbuf[n, ..., 0][hit] = pz[hit]
    bary = np.full((N, H, W, 1, 3), -1.0)
    dists = np.full((N, H, W, 1), -1.0)
    return tuple(torch.from_numpy(a) for a in (pix_to_face, zbuf, bary, dists))


@pytest.fixture
def fake_pytorch3d(monkeypatch):
    root = types.ModuleType("pytorch3d")
    structures = types.ModuleType("pytorch3d.structures")
    renderer = types.ModuleType("pytorch3d.renderer")
    mesh = types.ModuleType("pytorch3d.renderer.mesh")
    structures.Meshes = FakeMeshes
    mesh.rasterize_meshes = fake_rasterize_meshes
    root.structures, root.renderer, renderer.mesh = structures, renderer, mesh
    for name, module in {
        "pytorch3d": root,
        "pytorch3d.structures": structures,
        "pytorch3d.renderer": renderer,
        "pytorch3d.renderer.mesh": mesh,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    _pytorch3d.reset_cache()
    CALLS.clear()
    yield
    _pytorch3d.reset_cache()


@pytest.fixture
def no_pytorch3d(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch3d", None)  # import fails with ImportError
    _pytorch3d.reset_cache()
    yield
    _pytorch3d.reset_cache()


# -- tests ---------------------------------------------------------------------------------------------------
def test_backend_selection_without_pytorch3d(no_pytorch3d):
    assert resolve_backend("auto", "cpu") == "builtin"
    assert resolve_backend("auto", torch.device("cuda")) == "builtin"
    assert resolve_backend("builtin", "cuda") == "builtin"
    with pytest.raises(ImportError, match="--renderer builtin"):
        resolve_backend("pytorch3d", "cpu")
    with pytest.raises(ValueError, match="unknown renderer backend"):
        resolve_backend("opengl", "cpu")
    verts = torch.tensor([[[0.0, 0.0, 5.0], [1.0, 0.0, 5.0], [0.0, 1.0, 5.0]]])
    assert rasterize(verts, [[0, 1, 2]], torch.eye(3), 8, backend="auto").backend == "builtin"


def test_backend_selection_with_pytorch3d(fake_pytorch3d):
    assert resolve_backend("auto", "cuda:0") == "pytorch3d"  # importable AND on CUDA
    assert resolve_backend("auto", "cpu") == "builtin"  # importable but on CPU: the built-in is faster
    assert resolve_backend("builtin", "cuda") == "builtin"
    assert resolve_backend("pytorch3d", "cpu") == "pytorch3d"  # explicit request is honoured


def test_broken_pytorch3d_build_falls_back(monkeypatch):
    class Broken(types.ModuleType):
        def __getattr__(self, name):
            raise OSError("libc10_cuda.so: undefined symbol")

    monkeypatch.setitem(sys.modules, "pytorch3d", Broken("pytorch3d"))
    monkeypatch.setitem(sys.modules, "pytorch3d.renderer", None)
    _pytorch3d.reset_cache()
    try:
        assert not _pytorch3d.available()
        assert resolve_backend("auto", "cuda") == "builtin"
    finally:
        _pytorch3d.reset_cache()


def test_ndc_conversion_matches_pytorch3d_pixel_centres():
    for H, W in ((24, 40), (40, 24), (16, 16)):
        rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        centres = torch.tensor(np.stack([cols + 0.5, rows + 0.5, np.ones_like(rows)], -1), dtype=torch.float64)
        ndc = _pytorch3d.to_ndc(centres, H, W).numpy()
        assert np.allclose(ndc[..., 0], _pix_to_non_square_ndc(W - 1 - cols, W, H))
        assert np.allclose(ndc[..., 1], _pix_to_non_square_ndc(H - 1 - rows, H, W))


def test_pix_to_face_conversion():
    # two frames; frame 0 kept triangles [0, 2, 3], frame 1 kept [1, 3] -> packed order 0 2 3 1 3
    packed_to_triangle = torch.tensor([0, 2, 3, 1, 3])
    pix_to_face = torch.tensor([[[[0], [1], [-1]]], [[[3], [4], [-1]]]])  # (2, 1, 3, 1)
    ids = _pytorch3d.triangle_id_from_pix_to_face(pix_to_face, packed_to_triangle)
    assert ids.tolist() == [[[0, 2, -1]], [[1, 3, -1]]]
    empty = _pytorch3d.triangle_id_from_pix_to_face(torch.full((1, 2, 2, 1), -1), torch.zeros(0, dtype=torch.long))
    assert torch.all(empty == -1)


def _scene():
    gen = torch.Generator().manual_seed(3)
    n_tris = 12
    centres = torch.rand(n_tris, 1, 3, generator=gen, dtype=torch.float64) * torch.tensor([2.4, 1.4, 3.0])
    centres = centres + torch.tensor([-1.0, -0.7, 4.0], dtype=torch.float64)
    verts = (centres + 0.6 * torch.randn(n_tris, 3, 3, generator=gen, dtype=torch.float64)).reshape(1, -1, 3)
    frames = torch.cat([verts, verts + torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)])
    frames[1, 0, 2] = -1.0  # triangle 0 straddles the near plane in frame 1: skipped by both backends
    tris = torch.arange(3 * n_tris).reshape(-1, 3)
    K = torch.tensor([[[70.0, 0, 20.1], [0, 70.0, 11.7], [0, 0, 1]], [[74.0, 0, 19.5], [0, 73.0, 12.2], [0, 0, 1]]],
                     dtype=torch.float64)  # fmt: skip
    return frames, tris, K


@pytest.mark.parametrize("cull", [False, True])
def test_pytorch3d_backend_matches_builtin(fake_pytorch3d, cull):
    frames, tris, K = _scene()
    v = frames.clone().requires_grad_(True)
    ours = rasterize(frames, tris, K, (24, 40), backend="builtin", cull_backfaces=cull)
    theirs = rasterize(v, tris, K, (24, 40), backend="pytorch3d", cull_backfaces=cull)
    assert theirs.backend == "pytorch3d" and ours.backend == "builtin"
    assert CALLS and CALLS[-1]["faces_per_pixel"] == 1 and CALLS[-1]["perspective_correct"]
    assert CALLS[-1]["image_size"] == (24, 40) and CALLS[-1]["blur_radius"] == 0.0
    assert ours.mask.sum() > 200 and len(ours.triangle_id.unique()) > 5
    assert torch.equal(theirs.triangle_id, ours.triangle_id)
    assert torch.allclose(theirs.bary, ours.bary) and torch.allclose(theirs.depth, ours.depth)
    assert not (theirs.triangle_id[1] == 0).any()
    # same differentiable path: gradients reach the vertices
    theirs.depth.sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_pytorch3d_backend_with_nothing_to_draw(fake_pytorch3d):
    frames, tris, K = _scene()
    behind = frames * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    frags = rasterize(behind, tris, K, (24, 40), backend="pytorch3d")
    assert not frags.mask.any() and not CALLS  # not even called

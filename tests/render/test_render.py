"""Rasterization: visibility, coverage, barycentrics, depth, gradients, batching, culling."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.render import Fragments, interpolate, pixel_normals, rasterize, sh_shading, sh_directional

EYE = torch.eye(3)[None]  # K = identity: a camera point (u z, v z, z) lands on pixel coordinates (u, v)


def flat(points_uv, z):
    """Camera points that project to the given pixel coordinates at depth z with K = identity."""
    uv = torch.as_tensor(points_uv, dtype=torch.float64)
    z = torch.as_tensor(z, dtype=torch.float64).expand(uv.shape[0])
    return torch.stack([uv[:, 0] * z, uv[:, 1] * z, z], dim=-1)


def grid_mesh(n=4, z=5.0, jitter=0.05, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    xs = torch.linspace(-1.0, 1.0, n, dtype=dtype)
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    verts = torch.stack(
        [
            gx + jitter * torch.randn(n, n, generator=gen, dtype=dtype),
            gy + jitter * torch.randn(n, n, generator=gen, dtype=dtype),
            z + 0.3 * torch.randn(n, n, generator=gen, dtype=dtype),
        ],
        dim=-1,
    ).reshape(1, n * n, 3)
    tris = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, cc, d = r * n + c, r * n + c + 1, (r + 1) * n + c + 1, (r + 1) * n + c
            tris += [(a, b, cc), (a, cc, d)]
    return verts, torch.tensor(tris)


def test_fragments_fields_and_conventions():
    verts = flat([(2.0, 2.0), (14.0, 2.0), (2.0, 14.0)], 3.0)[None].float()
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), EYE, (16, 20), backend="builtin")
    assert isinstance(frags, Fragments)
    assert frags.triangle_id.shape == (1, 16, 20) and frags.triangle_id.dtype == torch.int64
    assert frags.bary.shape == (1, 16, 20, 3) and frags.depth.shape == (1, 16, 20)
    assert frags.mask.dtype == torch.bool
    m = frags.mask
    assert torch.all(frags.triangle_id[~m] == -1)
    assert torch.all(frags.bary[~m] == 0) and torch.all(frags.depth[~m] == 0)  # documented: 0 at background
    assert torch.allclose(frags.bary[m].sum(-1), torch.ones(int(m.sum())), atol=1e-6)
    assert torch.allclose(frags.depth[m], torch.full((int(m.sum()),), 3.0))
    # pixel (row i, col j) has its centre at (j + 0.5, i + 0.5): the centre (2.5, 2.5) is inside, (1.5, 2.5) not
    assert frags.mask[0, 2, 2] and not frags.mask[0, 2, 1] and not frags.mask[0, 1, 2]
    # barycentrics follow the triangle's vertex order
    b = frags.bary[0, 2, 2]
    assert torch.allclose(b, torch.tensor([1 - 1 / 12, 1 / 24, 1 / 24]), atol=1e-6)


def test_depth_ordering():
    near = flat([(4, 4), (28, 6), (8, 28)], 2.0)
    far = flat([(2, 2), (30, 2), (2, 30), (30, 30)], 5.0)
    verts = torch.cat([near, far])[None]
    tris_near_first = torch.tensor([[0, 1, 2], [3, 4, 5], [4, 6, 5]])
    tris_far_first = torch.tensor([[3, 4, 5], [4, 6, 5], [0, 1, 2]])
    a = rasterize(verts, tris_near_first, EYE, 32)
    b = rasterize(verts, tris_far_first, EYE, 32)
    near_a = a.triangle_id == 0
    near_b = b.triangle_id == 2
    assert near_a.sum() > 100 and torch.equal(near_a, near_b)  # the nearer triangle wins whatever the order
    assert torch.allclose(a.depth[near_a], torch.tensor(2.0, dtype=torch.float64))
    assert torch.allclose(a.depth[a.mask & ~near_a], torch.tensor(5.0, dtype=torch.float64))

    # two triangles crossing each other: each pixel shows the nearer surface
    t1 = torch.tensor([[-1.0, -1.0, 4.0], [1.0, -1.0, 4.0], [0.0, 1.0, 6.0]], dtype=torch.float64)
    t2 = torch.tensor([[-1.0, 1.0, 4.2], [1.0, 1.0, 4.2], [0.0, -1.0, 6.2]], dtype=torch.float64)
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]], dtype=torch.float64)
    frags = rasterize(torch.cat([t1, t2])[None], torch.tensor([[0, 1, 2], [3, 4, 5]]), K, 32)
    both = torch.zeros(32, 32, dtype=torch.bool)
    for tri in (t1, t2):
        single = rasterize(tri[None], torch.tensor([[0, 1, 2]]), K, 32)
        both |= single.mask[0]
        seen_here = frags.triangle_id[0] == (0 if tri is t1 else 1)
        # wherever this triangle is seen, its own depth is the minimum of the two candidates
        assert torch.all(single.depth[0][seen_here] <= frags.depth[0][seen_here] + 1e-9)
    assert torch.equal(both, frags.mask[0])
    ids = frags.triangle_id[0][frags.mask[0]]
    assert (ids == 0).any() and (ids == 1).any()
    d1 = rasterize(t1[None], torch.tensor([[0, 1, 2]]), K, 32).depth[0]
    d2 = rasterize(t2[None], torch.tensor([[0, 1, 2]]), K, 32).depth[0]
    overlap = (d1 > 0) & (d2 > 0)
    expect = torch.where(d1 <= d2, 0, 1)
    assert torch.equal(frags.triangle_id[0][overlap], expect[overlap])


def test_empty_images():
    K = torch.tensor([[50.0, 0, 16], [0, 50.0, 16], [0, 0, 1]])
    verts, tris = grid_mesh(dtype=torch.float32)
    cases = {
        "no triangles": (verts, torch.zeros(0, 3, dtype=torch.long)),
        "behind the camera": (verts * torch.tensor([1.0, 1.0, -1.0]), tris),
        "out of view": (verts + torch.tensor([100.0, 0.0, 0.0]), tris),
        "straddling the near plane": (verts - torch.tensor([0.0, 0.0, 5.0]), tris),
    }
    for name, (v, t) in cases.items():
        v = v.clone().requires_grad_(True)
        frags = rasterize(v, t, K, (16, 24))
        assert not frags.mask.any(), name
        assert torch.all(frags.triangle_id == -1) and frags.num_covered == 0
        assert torch.all(frags.bary == 0) and torch.all(frags.depth == 0)
        colour = interpolate(frags, torch.rand(16, 3))
        assert colour.shape == (1, 16, 24, 3) and torch.all(colour == 0)
        loss = colour.sum() + frags.depth.sum() + pixel_normals(frags, v).sum()
        loss.backward()
        assert v.grad is None or (torch.isfinite(v.grad).all() and torch.all(v.grad == 0)), name


def _analytic_right_triangle_count(x0, y0, a, b):
    """Pixel centres (j + 0.5, i + 0.5) inside the triangle (x0, y0), (x0 + a, y0), (x0, y0 + b)."""
    total = 0
    for i in range(math.ceil(y0 - 0.5), math.floor(y0 + b - 0.5) + 1):
        yc = i + 0.5
        xmax = x0 + a * (1.0 - (yc - y0) / b)
        count = math.floor(xmax - 0.5) - math.ceil(x0 - 0.5) + 1
        total += max(count, 0)
    return total


@pytest.mark.parametrize("x0,y0,a,b", [(3.3, 2.7, 40.6, 27.1), (0.61, 0.2, 63.15, 63.3), (10.1, 20.8, 7.7, 31.4)])
def test_triangle_coverage_matches_analytic_count(x0, y0, a, b):
    verts = flat([(x0, y0), (x0 + a, y0), (x0, y0 + b)], 2.0)[None]
    for tris in (torch.tensor([[0, 1, 2]]), torch.tensor([[0, 2, 1]])):  # both windings
        frags = rasterize(verts, tris, EYE, (64, 72))
        assert int(frags.mask.sum()) == _analytic_right_triangle_count(x0, y0, a, b)
    # and a shared edge leaves neither gaps nor double coverage: a quad split in two covers its area
    quad = flat([(5.2, 4.9), (50.3, 6.1), (47.7, 44.4), (3.1, 40.2)], 3.0)[None]
    frags = rasterize(quad, torch.tensor([[0, 1, 2], [0, 2, 3]]), EYE, 64)
    area = 0.5 * abs(
        sum(
            quad[0, k, 0] / 3 * quad[0, (k + 1) % 4, 1] / 3 - quad[0, (k + 1) % 4, 0] / 3 * quad[0, k, 1] / 3
            for k in range(4)
        )
    )
    assert abs(int(frags.mask.sum()) - float(area)) < 0.05 * float(area)


def test_perspective_correct_barycentrics_and_depth():
    # a plane steeply tilted in depth: interpolated camera points must lie on each pixel's ray
    verts = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 9.0], [1.0, 1.0, 9.0], [-1.0, 1.0, 2.0]], dtype=torch.float64)
    K = torch.tensor([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]], dtype=torch.float64)
    frags = rasterize(verts[None], torch.tensor([[0, 1, 2], [0, 2, 3]]), K, 32)
    points = interpolate(frags, verts)[0][frags.mask[0]]
    rows, cols = torch.nonzero(frags.mask[0], as_tuple=True)
    u = points[:, 0] / points[:, 2] * 20 + 16
    v = points[:, 1] / points[:, 2] * 20 + 16
    assert torch.allclose(u, cols.double() + 0.5, atol=1e-9) and torch.allclose(v, rows.double() + 0.5, atol=1e-9)
    assert torch.allclose(frags.depth[0][frags.mask[0]], points[:, 2], atol=1e-9)


def test_gradients_match_finite_differences():
    verts, tris = grid_mesh(n=4)
    K = torch.tensor([[[60.0, 0, 16.3], [0, 60.0, 15.8], [0, 0, 1]]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    attrs = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    w_attr = torch.randn(1, 32, 32, 4, generator=gen, dtype=torch.float64)
    w_depth = torch.randn(1, 32, 32, generator=gen, dtype=torch.float64)
    w_shade = torch.randn(1, 32, 32, 3, generator=gen, dtype=torch.float64)
    sh = sh_directional((0.3, -0.5, -1.0), diffuse=0.8, ambient=0.2).double()

    def loss(v, a):
        frags = rasterize(v, tris, K, 32)
        shade = sh_shading(pixel_normals(frags, v), sh[None])
        value = (interpolate(frags, a) * w_attr).sum() + (frags.depth * w_depth).sum() + (shade * w_shade).sum()
        return value, frags.triangle_id

    v = verts.clone().requires_grad_(True)
    a = attrs.clone().requires_grad_(True)
    value, ids = loss(v, a)
    assert int((ids >= 0).sum()) > 300
    value.backward()
    eps = 1e-6
    checked = 0
    for which, tensor, grad in (("verts", verts, v.grad), ("attrs", attrs, a.grad)):
        numeric = torch.zeros_like(tensor)
        for idx in np.ndindex(*tensor.shape):
            plus, minus = tensor.clone(), tensor.clone()
            plus[idx] += eps
            minus[idx] -= eps
            if which == "verts":
                (lp, ids_p), (lm, ids_m) = loss(plus, attrs), loss(minus, attrs)
            else:
                (lp, ids_p), (lm, ids_m) = loss(verts, plus), loss(verts, minus)
            assert torch.equal(ids_p, ids) and torch.equal(ids_m, ids)  # away from edges: visibility fixed
            numeric[idx] = (lp - lm) / (2 * eps)
            checked += 1
        assert torch.allclose(grad, numeric, rtol=1e-5, atol=1e-6), (which, (grad - numeric).abs().max())
    assert checked == 16 * 3 + 16 * 4


def test_several_frames_match_single_calls_and_shared_K():
    verts, tris = grid_mesh(n=5, dtype=torch.float32)
    frames = torch.cat([verts, verts + torch.tensor([0.2, -0.1, 0.5]), verts * torch.tensor([1.0, 1.2, 1.0])])
    K = torch.tensor([[50.0, 0, 20], [0, 55.0, 18], [0, 0, 1]])
    Ks = torch.stack([K, K * torch.tensor([[1.1], [1.1], [1.0]]), K])
    batch = rasterize(frames, tris, Ks, (36, 40))
    for f in range(3):
        one = rasterize(frames[f : f + 1], tris, Ks[f], (36, 40))
        assert torch.equal(batch.triangle_id[f], one.triangle_id[0])
        assert torch.allclose(batch.bary[f], one.bary[0]) and torch.allclose(batch.depth[f], one.depth[0])
    shared = rasterize(frames, tris, K, (36, 40))  # (3, 3) K broadcast to all frames
    assert torch.equal(shared.triangle_id[0], batch.triangle_id[0])


def test_backface_culling():
    verts, tris = grid_mesh(n=3, jitter=0.0, dtype=torch.float32)
    verts[..., 2] = 5.0
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])
    # a triangle facing the camera has its outward (right-handed) normal pointing to -z in the camera frame
    a, b, c = verts[0, tris[:, 0]], verts[0, tris[:, 1]], verts[0, tris[:, 2]]
    normal = torch.cross(b - a, c - a, dim=-1)
    facing_camera = normal[:, 2] < 0
    front = tris if facing_camera.all() else tris[:, [0, 2, 1]]
    back = front[:, [0, 2, 1]]
    assert rasterize(verts, front, K, 32, cull_backfaces=True).mask.any()
    assert not rasterize(verts, back, K, 32, cull_backfaces=True).mask.any()
    assert rasterize(verts, back, K, 32, cull_backfaces=False).mask.sum() == rasterize(verts, front, K, 32).mask.sum()


def test_float64_and_float32_agree():
    verts, tris = grid_mesh(n=5)
    K = torch.tensor([[60.0, 0, 16], [0, 60.0, 16], [0, 0, 1]], dtype=torch.float64)
    f64 = rasterize(verts, tris, K, 32)
    f32 = rasterize(verts.float(), tris, K.float(), 32)
    assert f32.bary.dtype == torch.float32 and f64.bary.dtype == torch.float64
    assert torch.equal(f64.triangle_id, f32.triangle_id)
    assert torch.allclose(f64.bary.float(), f32.bary, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_builtin_backend():
    verts, tris = grid_mesh(n=5, dtype=torch.float32)
    K = torch.tensor([[[60.0, 0, 16], [0, 60.0, 16], [0, 0, 1]]])
    cpu = rasterize(verts, tris, K, 32, backend="builtin")
    v = verts.cuda().requires_grad_(True)
    gpu = rasterize(v, tris.cuda(), K.cuda(), 32, backend="builtin")
    assert gpu.triangle_id.device.type == "cuda" and gpu.bary.device.type == "cuda"
    assert torch.equal(gpu.triangle_id.cpu(), cpu.triangle_id)
    assert torch.allclose(gpu.bary.cpu(), cpu.bary, atol=1e-5)
    interpolate(gpu, v[0]).sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()


def test_numba_cache_fallback_when_nothing_is_writable(monkeypatch):
    from fitter.common import compiled

    real = compiled.numba.njit

    def njit_without_cache_dir(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return real(*args, cache=cache, **kwargs)

    monkeypatch.setattr(compiled.numba, "njit", njit_without_cache_dir)
    monkeypatch.setattr(compiled, "_cache_warned", False)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        add_one = compiled.njit_cached()(lambda x: x + 1)
    assert add_one(1) == 2


def test_result_does_not_depend_on_the_number_of_threads():
    verts, tris = grid_mesh(n=12, jitter=0.4, dtype=torch.float32)  # folds: overlapping triangles, ties
    K = torch.tensor([[60.0, 0, 20], [0, 60.0, 20], [0, 0, 1]])
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(rasterize(verts, tris, K, (40, 40)).triangle_id)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])

"""Antialiasing / soft silhouettes: coverage equals area, and its gradient is the area's gradient."""
from __future__ import annotations

import math

import numpy as np
import torch

from fitter.render import antialias, rasterize, silhouette_crossings, soft_mask
from spheres import icosphere

EYE = torch.eye(3, dtype=torch.float64)[None]


def flat(points_uv, z):
    uv = torch.as_tensor(points_uv, dtype=torch.float64)
    z = torch.as_tensor(z, dtype=torch.float64).expand(uv.shape[0])
    return torch.stack([uv[:, 0] * z, uv[:, 1] * z, z], dim=-1)


def polygon_area(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * (x * y.roll(-1) - x.roll(-1) * y).sum().abs()


def test_soft_mask_sums_to_the_area_and_has_the_area_gradient():
    corners = torch.tensor([(5.3, 4.7), (40.2, 10.1), (12.6, 38.9)], dtype=torch.float64)
    p = corners.clone().requires_grad_(True)
    frags = rasterize(flat(p, 2.0)[None], torch.tensor([[0, 1, 2]]), EYE, 48)
    soft_graph = soft_mask(frags)
    soft = soft_graph.detach()
    hard = frags.mask.sum()
    area = polygon_area(corners)
    assert soft.shape == (1, 48, 48) and float(soft.min()) >= 0 and float(soft.max()) <= 1
    assert abs(float(soft.sum()) - float(area)) < 1.0  # the hard count is off by the perimeter's luck
    assert abs(float(soft.sum()) - float(area)) <= abs(float(hard) - float(area)) + 0.5
    soft_graph.sum().backward()
    q = corners.clone().requires_grad_(True)
    polygon_area(q).backward()
    assert torch.allclose(p.grad, q.grad, atol=0.12 * float(q.grad.abs().max()))
    # interior pixels are untouched: only pixels next to the outline change
    changed = (soft - frags.mask.double()).abs() > 0
    assert int(changed.sum()) < 2 * 48 * 3


def test_shared_edges_are_not_silhouettes():
    quad = torch.tensor([(5.2, 4.9), (50.3, 6.1), (47.7, 44.4), (3.1, 40.2)], dtype=torch.float64)
    tris = torch.tensor([[0, 1, 2], [0, 2, 3]])
    frags = rasterize(flat(quad, 3.0)[None], tris, EYE, 56)
    crossings = silhouette_crossings(frags)
    # every crossing found is on the outline, none on the diagonal (0, 2)
    pairs = set(zip(crossings["a"].tolist(), crossings["b"].tolist()))
    assert pairs and all({a, b} != {0, 2} for a, b in pairs)
    assert abs(float(soft_mask(frags).sum()) - float(polygon_area(quad))) < 1.0


def test_occlusion_boundaries_are_antialiased():
    # a red triangle in front of a large blue quad: the red coverage follows the red triangle's area
    front = flat([(10.3, 9.6), (30.4, 14.2), (15.1, 33.7)], 2.0)
    back = flat([(1.0, 1.0), (47.0, 1.0), (47.0, 47.0), (1.0, 47.0)], 6.0)
    verts = torch.cat([front, back])[None].requires_grad_(True)
    tris = torch.tensor([[0, 1, 2], [3, 4, 5], [3, 5, 6]])
    frags = rasterize(verts, tris, EYE, 48)
    red = (frags.triangle_id == 0).double()[..., None]
    blue = (frags.triangle_id > 0).double()[..., None]
    image = antialias(torch.cat([red, blue], -1), frags)
    area = polygon_area(torch.tensor([(10.3, 9.6), (30.4, 14.2), (15.1, 33.7)]))
    assert abs(float(image[..., 0].detach().sum()) - float(area)) < 1.0
    assert torch.allclose(image.sum(-1)[frags.mask], torch.ones(int(frags.mask.sum()), dtype=torch.float64))
    image[..., 0].sum().backward()
    assert verts.grad[0, :3].abs().sum() > 0  # the front triangle's outline moves
    assert torch.all(verts.grad[0, 3:, :2] == 0)  # the background quad's corners are outside the image


def test_closed_mesh_contour_from_facing_changes():
    # a sphere has no border edges: its outline is made of edges between front- and back-facing triangles
    verts, tris = icosphere(4)
    radius, distance, focal = 1.0, 6.0, 100.0
    cam = (verts.double() * radius + torch.tensor([0.0, 0.0, distance], dtype=torch.float64))[None]
    K = torch.tensor([[[focal, 0, 32.0], [0, focal, 32.0], [0, 0, 1]]], dtype=torch.float64)
    for cull in (False, True):
        frags = rasterize(cam, tris, K, 64, cull_backfaces=cull)
        soft = soft_mask(frags)
        # the outline of a sphere seen in perspective is a circle of radius f R / sqrt(d^2 - R^2); the mesh is
        # a polyhedron inscribed in the sphere, slightly smaller
        r_img = focal * radius / math.sqrt(distance**2 - radius**2)
        assert 0.97 * math.pi * r_img**2 < float(soft.sum()) < math.pi * r_img**2
        assert abs(float(soft.sum()) - float(frags.mask.sum())) < 0.02 * float(frags.mask.sum())


def test_antialias_batch_and_no_silhouette():
    quad = torch.tensor([(-1.0, -1.0), (30.0, -1.0), (30.0, 30.0), (-1.0, 30.0)], dtype=torch.float64)
    frags = rasterize(flat(quad, 2.0)[None].expand(2, -1, -1), torch.tensor([[0, 1, 2], [0, 2, 3]]), EYE, 24)
    image = torch.rand(2, 24, 24, 3, dtype=torch.float64)
    assert torch.equal(antialias(image, frags), image)  # covers the whole image: nothing to blend


def test_antialias_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    corners = torch.tensor([(5.3, 4.7), (26.2, 8.1), (10.6, 27.9)], dtype=torch.float64)
    weights = torch.rand(1, 32, 32, generator=gen, dtype=torch.float64)
    tris = torch.tensor([[0, 1, 2]])

    def loss(p):
        frags = rasterize(flat(p, 2.0)[None], tris, EYE, 32)
        return (soft_mask(frags) * weights).sum(), frags.triangle_id, silhouette_crossings(frags)["first"]

    p = corners.clone().requires_grad_(True)
    value, ids, pairs = loss(p)
    value.backward()
    eps = 1e-6
    for idx in np.ndindex(3, 2):
        plus, minus = corners.clone(), corners.clone()
        plus[idx] += eps
        minus[idx] -= eps
        (lp, ip, cp), (lm, im, cm) = loss(plus), loss(minus)
        assert torch.equal(ip, ids) and torch.equal(im, ids) and torch.equal(cp, pairs) and torch.equal(cm, pairs)
        numeric = (lp - lm) / (2 * eps)
        assert abs(float(numeric) - float(p.grad[idx])) < 1e-5 * max(1.0, abs(float(numeric))), idx

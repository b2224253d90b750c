"""Interpolation, textures, normals, SH shading, grey renders and label masks."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from fitter.render import (
    SH_GREY,
    SH_NEUTRAL,
    coverage_mask,
    face_normals,
    interpolate,
    rasterize,
    render_labels,
    sample_texture,
    sh_basis,
    sh_directional,
    sh_rotation,
    sh_shading,
    shade_grey,
    vertex_normals,
)
from spheres import icosphere


def test_normals_of_a_sphere_point_outwards():
    verts, tris = icosphere(3)
    vn = vertex_normals(verts[None], tris)[0]
    assert torch.allclose(vn.norm(dim=-1), torch.ones(len(verts)), atol=1e-5)
    assert float((vn * verts).sum(-1).min()) > 0.999  # radial
    fn = face_normals(verts[None], tris)[0]
    centre = verts[tris].mean(1)
    assert bool(((fn * centre).sum(-1) > 0.98).all())  # counter-clockwise from outside -> outward
    # unused vertices get a zero normal, batched frames are independent
    extra = torch.cat([verts, torch.zeros(1, 3)])
    two = torch.stack([extra, extra * 2.0])
    vn2 = vertex_normals(two, tris)
    assert torch.all(vn2[:, -1] == 0) and torch.allclose(vn2[0], vn2[1], atol=1e-6)


def test_sh_basis_is_orthonormal_and_lighting_constants():
    gen = torch.Generator().manual_seed(0)
    n = torch.nn.functional.normalize(torch.randn(200000, 3, generator=gen, dtype=torch.float64), dim=-1)
    Y = sh_basis(n)
    gram = (Y.T @ Y) * (4 * math.pi / len(n))  # Monte Carlo integral over the sphere
    assert torch.allclose(gram, torch.eye(9, dtype=torch.float64), atol=0.02)
    # uniform radiance 1 -> shading 1 everywhere
    normals = torch.nn.functional.normalize(torch.randn(2, 5, 7, 3, generator=gen), dim=-1)
    assert torch.allclose(sh_shading(normals, SH_NEUTRAL[None].expand(2, 9, 3)), torch.ones(2, 5, 7, 3), atol=1e-5)
    # a directional light: E/pi ~ ambient + diffuse * max(0, n . d) (second-order SH, so approximately)
    d = torch.tensor([0.3, -0.4, -1.0])
    sh = sh_directional(d, diffuse=1.0, ambient=0.2)
    flat_normals = normals.reshape(-1, 3)
    got = sh_shading(flat_normals[None], sh)[0, :, 0]
    want = 0.2 + (flat_normals @ (d / d.norm())).clamp(min=0)
    assert float((got - want).abs().max()) < 0.1
    # facing the light is bright, facing away is dark; the grey default light comes from the camera side
    to_cam = torch.tensor([[[0.0, 0.0, -1.0]], [[0.0, 0.0, 1.0]]])
    lit = sh_shading(to_cam, SH_GREY)
    assert float(lit[0].mean()) > 0.8 and float(lit[1].mean()) < 0.35
    # grey light (F, 9) gives one channel
    assert sh_shading(normals, torch.zeros(2, 9)).shape == (2, 5, 7, 1)


def test_interpolate_attribute_shapes_and_face_varying_uvs():
    verts, tris = icosphere(2)
    cam = verts[None] * 2.0 + torch.tensor([0.0, 0.0, 6.0])
    K = torch.tensor([[[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]])
    frags = rasterize(cam.expand(2, -1, -1).contiguous(), tris, K.expand(2, 3, 3), 32)
    colour = torch.rand(len(verts), 3)
    a = interpolate(frags, colour)
    b = interpolate(frags, colour[None])
    c = interpolate(frags, colour[None].expand(2, -1, -1))
    assert a.shape == (2, 32, 32, 3) and torch.equal(a, b) and torch.allclose(a, c)
    assert torch.all(a[~frags.mask] == 0)
    assert torch.all(interpolate(frags, colour, background=0.5)[~frags.mask] == 0.5)
    # face-varying attributes: each triangle gets its own 3 UVs (seams), indexed by a second triangle list
    tri_uvs = torch.arange(3 * len(tris)).reshape(-1, 3)
    uvs = torch.rand(3 * len(tris), 2)
    uv_img = interpolate(frags, uvs, tri_uvs)
    m = frags.mask
    tid = frags.triangle_id[m]
    expect = (uvs[tri_uvs[tid]] * frags.bary[m][..., None]).sum(1)
    assert torch.allclose(uv_img[m], expect, atol=1e-6)
    with pytest.raises(ValueError):
        interpolate(frags, uvs, tri_uvs[:-1])


def test_sample_texture_orientation_and_udim_tiles():
    # a 4 x 8 texture whose value encodes the texel: v up means texel row 0 is the top of the UV square (v=1)
    Ht, Wt = 4, 8
    rows, cols = torch.meshgrid(torch.arange(Ht), torch.arange(Wt), indexing="ij")
    tex = (rows * 10 + cols).float()[None, None]  # (1, 1, Ht, Wt)
    u = (torch.tensor([0, 7, 3]) + 0.5) / Wt
    v = 1.0 - (torch.tensor([0, 3, 2]) + 0.5) / Ht
    uv = torch.stack([u, v], -1)[None, None]  # (1, 1, 3, 2)
    got = sample_texture(uv, tex)[0, 0, :, 0]
    assert torch.allclose(got, torch.tensor([0.0, 37.0, 23.0]))
    # UDIM: tile k covers u in [k, k+1], no bleeding across the seam
    tiles = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])[None]  # (1, 2, 1, 4, 4)
    uv2 = torch.tensor([[[[0.999, 0.5], [1.001, 0.5], [1.5, 0.2], [0.2, 0.2], [2.5, 0.5]]]])
    got2 = sample_texture(uv2, tiles)[0, 0, :, 0]
    assert torch.allclose(got2, torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0]))  # u beyond the last tile clamps to it
    # mask zeroes background; gradients reach texture and UVs
    t = tex.clone().requires_grad_(True)
    uvg = (uv + 0.01).requires_grad_(True)
    out = sample_texture(uvg, t, mask=torch.tensor([[[True, True, False]]]))
    assert float(out[0, 0, 2, 0].detach()) == 0.0
    out.sum().backward()
    assert t.grad.abs().sum() > 0 and uvg.grad.abs().sum() > 0


def test_shade_grey_labels_and_masks():
    verts, tris = icosphere(3)
    cam = verts[None] * 2.0 + torch.tensor([0.0, 0.0, 6.0])
    K = torch.tensor([[[60.0, 0, 24], [0, 60.0, 24], [0, 0, 1]]])
    frags = rasterize(cam, tris, K, 48)
    grey = shade_grey(frags, cam)
    assert grey.shape == (1, 48, 48, 1) and float(grey.max()) <= 1.0 and float(grey.min()) >= 0.0
    # the sphere's centre faces the camera and the key light: brighter than its rim
    assert float(grey[0, 24, 24, 0]) > float(grey[0][frags.mask[0]].mean())
    rgb = shade_grey(frags, cam, channels=3, background=1.0)
    assert rgb.shape == (1, 48, 48, 3) and torch.all(rgb[~frags.mask] == 1.0)
    # part labels: left half 0, right half 1
    labels = (verts[:, 0] > 0).long()
    hard = render_labels(frags, labels, soft=False)
    soft = render_labels(frags, labels, 2)
    assert hard.shape == (1, 48, 48) and torch.all(hard[~frags.mask] == -1)
    assert bool((hard[0, 24, 40] == 1) and (hard[0, 24, 8] == 0))
    assert torch.allclose(soft.sum(-1)[frags.mask], torch.ones(int(frags.mask.sum())), atol=1e-5)
    assert torch.equal(soft.argmax(-1)[frags.mask], hard[frags.mask])
    m = coverage_mask(frags)
    assert m.shape == (1, 48, 48, 1) and torch.equal(m[..., 0] > 0, frags.mask)


def test_interpolate_over_an_image_background():
    verts, tris = icosphere(2)
    cam = verts[None] * 2.0 + torch.tensor([0.0, 0.0, 6.0])
    frags = rasterize(cam, tris, torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]), 32)
    photo = torch.rand(1, 32, 32, 3, requires_grad=True)
    out = interpolate(frags, torch.ones(len(verts), 3), background=photo)
    assert torch.equal(out[~frags.mask], photo[~frags.mask])
    assert torch.allclose(out[frags.mask], torch.ones(1), atol=1e-5)
    out.sum().backward()
    assert torch.equal(photo.grad[0, ..., 0] > 0, ~frags.mask[0])


class TestShRotation:
    """One world-fixed light seen from a rotated camera: rotated coefficients shade rotated normals alike."""

    def test_rotated_light_shades_rotated_normals_the_same(self):
        R = torch.as_tensor(Rotation.from_euler("YXZ", [50, -20, 10], degrees=True).as_matrix(), dtype=torch.float32)
        sh = sh_directional((0.4, -0.6, -0.7), diffuse=0.8, ambient=0.3, colour=(1.0, 0.8, 0.6))
        sh = sh + 0.1 * torch.randn(9, 3, generator=torch.Generator().manual_seed(0))  # every band non-zero
        normals = torch.nn.functional.normalize(torch.randn(1, 500, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
        before = sh_shading(normals, sh)
        after = sh_shading(normals @ R.T, sh_rotation(R) @ sh)
        assert torch.allclose(before, after, atol=1e-5)

    def test_a_directional_light_follows_the_rotation(self):
        R = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90 deg about y
        d = torch.tensor([0.0, 0.0, -1.0])
        rotated = sh_rotation(R) @ sh_directional(d, diffuse=1.0)
        assert torch.allclose(rotated, sh_directional(R @ d, diffuse=1.0), atol=1e-5)
        assert torch.allclose(sh_rotation(torch.eye(3)), torch.eye(9), atol=1e-6)

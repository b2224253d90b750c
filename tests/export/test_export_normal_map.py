"""normal.png: tangent-space normals of the displaced surface, against analytic derivatives, mirrored UVs,
the actually displaced dense mesh, and ICT; the UV gradient; 8- and 16-bit files."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from export_meshes import grid_mesh, rotation, smooth_normals, texel_uv
from fitter.common.uv_lookup import sample_map
from fitter.export.normal_map import (decode_normal_map, normal_map_from_displacement, uv_gradient,
                                      write_normal_map)
from fitter.export.tangents import tangent_frames, vertex_normals_np
from fitter.export.uv_layout import uv_mask
from fitter.model.subdivision import detail_mesh_arrays


def test_flat_displacement_gives_flat_normal_map(ict, tmp_path):
    verts = ict.mean.numpy()
    nm = normal_map_from_displacement(verts, ict.topology, np.zeros((96, 96), np.float32), 96)
    assert nm.shape == (96, 96, 3)
    assert np.abs(nm - np.array([0.5, 0.5, 1.0])).max() < 1e-6
    path = write_normal_map(tmp_path, nm)
    img = np.asarray(Image.open(path))
    assert img.dtype == np.uint8 and np.all(img == [128, 128, 255])
    assert "OpenGL" in Image.open(path).text["facefit:convention"]
    img16 = cv2.imread(str(write_normal_map(tmp_path, nm, bits=16, stem="normal16")), cv2.IMREAD_UNCHANGED)
    assert img16.dtype == np.uint16 and np.all(img16[..., ::-1] == [32768, 32768, 65535])
    assert "OpenGL" in Image.open(tmp_path / "normal16.png").text["facefit:convention"]  # 16-bit keeps its text
    with pytest.raises(ValueError, match="bits"):
        write_normal_map(tmp_path, nm, bits=12)


def _analytic_local(u, v, A, k, size):
    """Tangent-space normals of z = A sin(2 pi k u) + A cos(2 pi v) on a grid with x = u * Lx, y = v * Ly."""
    gx = A * 2 * np.pi * k * np.cos(2 * np.pi * k * u) / size[0]
    gy = -A * 2 * np.pi * np.sin(2 * np.pi * v) / size[1]
    n = np.stack([-gx, -gy, np.ones_like(gx)], -1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def test_normal_map_matches_analytic_derivative():
    size, A, k, S = (4.0, 2.0), 0.03, 2, 128
    verts, topo = grid_mesh(8, size)
    R = rotation()
    u, v = texel_uv(S)
    disp = A * np.sin(2 * np.pi * k * u) + A * np.cos(2 * np.pi * v)
    nm = normal_map_from_displacement(verts @ R.T, topo, disp, S)  # a rotated plane: the frame follows it
    local = decode_normal_map(nm)
    want = _analytic_local(u, v, A, k, size)
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(local - want)[inner].max() < 2e-3  # central differences + 8-bit-free float map
    assert np.abs(local - want).max() < 2e-2  # one-sided differences at the border
    # Green is the +v component (OpenGL): where the height rises towards +v the normal leans to -v.
    rising = np.sin(2 * np.pi * v) < -0.5  # d/dv of A cos(2 pi v) = -2 pi A sin(2 pi v) > 0
    falling = np.sin(2 * np.pi * v) > 0.5
    assert np.all(nm[..., 1][rising] < 0.5) and np.all(nm[..., 1][falling] > 0.5)
    # Red is the +u component.
    assert np.all(nm[..., 0][np.cos(2 * np.pi * k * u) > 0.5] < 0.5)
    # A different normal-map size resamples the gradient, not the texels.
    nm2 = normal_map_from_displacement(verts @ R.T, topo, disp, 64)
    u2, v2 = texel_uv(64)
    assert np.abs(decode_normal_map(nm2) - _analytic_local(u2, v2, A, k, size))[2:-2, 2:-2].max() < 5e-3


def test_normal_map_mirrored_uvs_world_normals():
    # Mirrored UVs flip the tangent frame's handedness (sign -1); decoded into world space with that frame
    # the normals must still be the displaced surface's.
    size, A, S = (3.0, 3.0), 0.04, 96
    verts, topo = grid_mesh(6, size, mirror_u=True)
    fr = tangent_frames(verts, topo)
    assert np.all(fr.sign == -1)
    assert np.allclose(fr.tangent, [-1, 0, 0]) and np.allclose(fr.bitangent, [0, 1, 0])
    u, v = texel_uv(S)
    disp = A * np.sin(2 * np.pi * u)  # x = (1 - u) * 3, so z = A sin(2 pi (1 - x / 3))
    local = decode_normal_map(normal_map_from_displacement(verts, topo, disp, S))
    world = local[..., 0:1] * fr.tangent[0] + local[..., 1:2] * fr.bitangent[0] + local[..., 2:3] * fr.normal[0]
    dzdx = -A * 2 * np.pi * np.cos(2 * np.pi * u) / size[0]
    want = np.stack([-dzdx, np.zeros_like(u), np.ones_like(u)], -1)
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    assert np.abs(world - want)[2:-2, 2:-2].max() < 2e-3


def test_normal_map_agrees_with_displaced_geometry():
    # The normal map decoded in the tangent frame vs. the normals of the actually displaced dense mesh.
    size, S = (4.0, 3.0), 128
    verts, topo = grid_mesh(4, size)
    R = rotation(0.2, -0.4, 1.1)
    verts = verts @ R.T
    u, v = texel_uv(S)
    disp = 0.05 * np.sin(2 * np.pi * u) * np.cos(2 * np.pi * v)
    nm = normal_map_from_displacement(verts, topo, disp, S)
    dense = detail_mesh_arrays(verts, topo, disp, levels=4, region=None, normals=smooth_normals(verts, topo))
    tris = np.concatenate([dense.polygons[:, [0, 1, 2]], dense.polygons[:, [0, 2, 3]]])
    geo = vertex_normals_np(dense.vertices, tris)
    fr = tangent_frames(verts, topo)
    t, b, n = fr.tangent[0], fr.bitangent[0], fr.normal[0]  # planar: one frame everywhere
    uv = dense.uvs[np.unique(np.stack([dense.polygons.ravel(), dense.polygon_uvs.ravel()], 1), axis=0)[:, 1]]
    vid = np.unique(np.stack([dense.polygons.ravel(), dense.polygon_uvs.ravel()], 1), axis=0)[:, 0]
    inner = (uv[:, 0] > 0.05) & (uv[:, 0] < 0.95) & (uv[:, 1] > 0.05) & (uv[:, 1] < 0.95)
    local = decode_normal_map(sample_map(nm, uv[inner]))
    world = local[:, :1] * t + local[:, 1:2] * b + local[:, 2:] * n
    angle = np.degrees(np.arccos(np.clip((world * geo[vid[inner]]).sum(1), -1, 1)))
    assert angle.max() < 1.0, angle.max()


def test_ict_normal_map_of_a_bump(ict):
    # A Gaussian bump in the middle of the face tile: the normals lean away from its centre, in UV terms.
    verts = ict.mean.numpy()
    S = 128
    u, v = texel_uv(S)
    c = (0.5, 0.45)
    disp = 0.2 * np.exp(-((u - c[0]) ** 2 + (v - c[1]) ** 2) / (2 * 0.05 ** 2))
    nm = normal_map_from_displacement(verts, ict.topology, disp, S)
    mask = uv_mask(ict.topology, S)
    x = nm[..., 0] - 0.5
    y = nm[..., 1] - 0.5
    right, left = mask & (np.abs(v - c[1]) < 0.02) & (u > c[0] + 0.04) & (u < c[0] + 0.08), \
        mask & (np.abs(v - c[1]) < 0.02) & (u < c[0] - 0.04) & (u > c[0] - 0.08)
    up, down = mask & (np.abs(u - c[0]) < 0.02) & (v > c[1] + 0.04) & (v < c[1] + 0.08), \
        mask & (np.abs(u - c[0]) < 0.02) & (v < c[1] - 0.04) & (v > c[1] - 0.08)
    assert min(right.sum(), left.sum(), up.sum(), down.sum()) > 5
    assert x[right].min() > 0.01 and x[left].max() < -0.01
    assert y[up].min() > 0.01 and y[down].max() < -0.01
    far = ~mask
    far[::2] = False
    assert np.abs(nm[far & (np.hypot(u - c[0], v - c[1]) > 0.4)] - [0.5, 0.5, 1.0]).max() < 1e-6


def test_uv_gradient_inside_and_at_island_borders():
    S = 16
    u, v = texel_uv(S)
    ramp = 3.0 * u - 2.0 * v
    mask = np.zeros((S, S), bool)
    mask[4:12, 4:12] = True
    garbage = np.where(mask, ramp, np.nan)  # outside the island nothing may be read
    du, dv = uv_gradient(garbage, mask)
    assert np.allclose(du[mask], 3.0) and np.allclose(dv[mask], -2.0)  # central inside, one-sided at borders
    assert np.all(du[~mask] == 0) and np.all(dv[~mask] == 0)
    lone = np.zeros((S, S), bool)
    lone[2, 2] = True
    assert uv_gradient(ramp, lone)[0][2, 2] == 0  # an isolated texel has no neighbour to difference


def test_directx_decoding_flips_green():
    rgb = np.array([[0.5, 0.8, 0.9]])
    gl, dx = decode_normal_map(rgb), decode_normal_map(rgb, directx=True)
    assert gl[0, 1] > 0 and np.allclose(dx, gl * [1, -1, 1])

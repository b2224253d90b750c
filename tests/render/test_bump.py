"""Bump mapping units (fitter.render.bump): UV tangents, map sampling and slopes, tilted normals, and that only
face pixels are displaced. (test_detail.py checks the whole displaced_normals on a plane: zero map and ramp.)"""
from __future__ import annotations

import torch
import torch.nn.functional as nnf

from fitter.render import interpolate, pixel_normals, rasterize
from fitter.render.bump import displaced_normals, map_slopes, sample_map, tilted_normals, uv_tangents
from fitter.scene import Scene
from fitter.state import FitState
from small_models import plane_model

S = 16  # map side (texels)


def linear_map(a: float, b: float) -> torch.Tensor:
    """d(u, v) = a u + b v sampled at texel centres, row 0 at v = 1: (1, 1, S, S)."""
    c = (torch.arange(S, dtype=torch.float64) + 0.5) / S
    u, v = c[None, :], (1.0 - c)[:, None]
    return (a * u + b * v)[None, None]


class TestUvTangents:
    """T_u = dp/du and T_v = dp/dv of a triangle: known for axis-aligned UVs; in general they rebuild the edges."""

    def test_axis_aligned(self):
        corners = torch.tensor([[[0.0, 0, 0], [2.0, 0, 0], [0.0, 3.0, 0]]])
        uvs = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
        tu, tv = uv_tangents(corners, uvs)
        torch.testing.assert_close(tu, torch.tensor([[2.0, 0, 0]]))
        torch.testing.assert_close(tv, torch.tensor([[0.0, 3.0, 0]]))

    def test_rebuild_the_edges(self):
        g = torch.Generator().manual_seed(3)
        corners = torch.randn(5, 3, 3, generator=g, dtype=torch.float64)
        uvs = torch.rand(5, 3, 2, generator=g, dtype=torch.float64)
        tu, tv = uv_tangents(corners, uvs)
        for k in (1, 2):
            edge = corners[:, k] - corners[:, 0]
            duv = uvs[:, k] - uvs[:, 0]
            torch.testing.assert_close(tu * duv[:, :1] + tv * duv[:, 1:], edge)

    def test_degenerate_uvs_stay_finite(self):
        corners = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [0.0, 1.0, 0]]])
        uvs = torch.tensor([[[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])
        tu, tv = uv_tangents(corners, uvs)
        assert bool(torch.isfinite(tu).all() and torch.isfinite(tv).all())


class TestSampling:
    """sample_map reads texel centres with row 0 at v = 1; map_slopes of a linear map are its slopes."""

    def test_orientation(self):
        m = torch.zeros(1, 1, S, S)
        m[0, 0, 0, S - 1] = 1.0  # top-right texel: u ~ 1, v ~ 1
        uv = torch.tensor([[[[(S - 0.5) / S, (S - 0.5) / S], [0.5 / S, 0.5 / S]]]])
        torch.testing.assert_close(sample_map(m, uv), torch.tensor([[[1.0, 0.0]]]))

    def test_slopes_of_a_linear_map(self):
        m = linear_map(0.3, -0.7)
        uv = torch.tensor([[[[0.4, 0.5], [0.6, 0.3]]]], dtype=torch.float64)
        du, dv = map_slopes(m, uv)
        torch.testing.assert_close(du, torch.full((1, 1, 2), 0.3, dtype=torch.float64))
        torch.testing.assert_close(dv, torch.full((1, 1, 2), -0.7, dtype=torch.float64))


class TestTiltedNormals:
    """On a flat patch with orthonormal tangents, the displaced height field z = d(u, v) has the normal
    (-d_u, -d_v, 1); a mirrored UV map (T_v flipped) flips the v tilt; zero slopes keep the smooth normal."""

    N = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    TU = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    TV = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)

    def test_height_field(self):
        du, dv = torch.tensor([0.2], dtype=torch.float64), torch.tensor([-0.5], dtype=torch.float64)
        n = tilted_normals(self.N, self.TU, self.TV, du, dv)
        torch.testing.assert_close(n, nnf.normalize(torch.tensor([[-0.2, 0.5, 1.0]], dtype=torch.float64), dim=-1))

    def test_mirrored_uvs(self):
        du, dv = torch.tensor([0.2], dtype=torch.float64), torch.tensor([-0.5], dtype=torch.float64)
        n = tilted_normals(self.N, self.TU, -self.TV, du, dv)  # v runs along -y: z = 0.2 x + 0.5 y
        torch.testing.assert_close(n, nnf.normalize(torch.tensor([[-0.2, -0.5, 1.0]], dtype=torch.float64), dim=-1))

    def test_zero_slope_keeps_the_smooth_normal(self):
        smooth = nnf.normalize(torch.tensor([[0.1, -0.2, 1.0]], dtype=torch.float64), dim=-1)
        zero = torch.zeros(1, dtype=torch.float64)
        torch.testing.assert_close(tilted_normals(smooth, 3 * self.TU, 0.5 * self.TV, zero, zero), smooth)


class TestDisplacedNormals:
    """Only pixels of face triangles are bump-mapped; the rest keep the smooth normals."""

    def test_face_mask(self):
        model = plane_model()
        state = FitState.single(1, 1, (32, 32), 160.0)
        state.translation = torch.tensor([[0.0, 0.0, 30.0]])
        cam = Scene(model, state).camera_vertices()
        topo = model.topology
        frags = rasterize(cam, topo.triangles, state.K(), (32, 32))
        normals = pixel_normals(frags, cam)
        uv = interpolate(frags, torch.as_tensor(topo.uvs), topo.triangle_uvs)
        ramp = linear_map(0.5, 0.0).float()
        tri_uvs, uvs = torch.as_tensor(topo.triangle_uvs), torch.as_tensor(topo.uvs)
        none = torch.zeros(len(topo.triangles), dtype=torch.bool)
        torch.testing.assert_close(displaced_normals(cam, frags, normals, uv, ramp, none, tri_uvs, uvs), normals)
        tilted = displaced_normals(cam, frags, normals, uv, ramp, ~none, tri_uvs, uvs)
        # a map rising along +u (model +x, camera +x) tilts the normal towards -x
        assert bool((tilted[frags.mask][:, 0] < -0.01).all())

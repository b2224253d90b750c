"""The detail stage: bump-mapped shading of a UV displacement map, the detail term, its priors, and a flat
textured plane with a known groove that a detail stage recovers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.crop import FitCrop
from fitter.energy.detail import DetailTerm, photo_footprint
from fitter.energy.displacement_prior import DisplacementPrior, line_response
from fitter.energy.photo_target import PhotoTarget, PhotoTargets
from fitter.model.topology import Topology
from fitter.optimize.presets import load_preset
from fitter.optimize.schedule import run_stage
from fitter.render import interpolate, pixel_normals, rasterize, sh_directional, sh_shading
from fitter.render.bump import displaced_normals
from fitter.scene import Scene
from fitter.state import FitState

HALF = 3.0  # the plane spans [-HALF, HALF]^2 cm in x, y (model frame), facing +z (the camera)
DEPTH = 30.0  # cm from the camera
FOCAL = 640.0
IMAGE = 128  # the photo is IMAGE x IMAGE pixels; the plane fills most of it
LIGHT = sh_directional((-0.7, -0.4, -1.0), diffuse=0.8, ambient=0.35)  # key light from the upper left
ALBEDO = 0.5


class PlaneModel:
    """The smallest stand-in for a MorphableModel: a fixed flat grid with UVs u = (x + H) / 2H, v = (y + H) / 2H."""

    def __init__(self, n: int = 9) -> None:
        xs = np.linspace(-HALF, HALF, n)
        x, y = np.meshgrid(xs, xs)
        self.points = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1).astype(np.float32)
        idx = np.arange(n * n).reshape(n, n)
        quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], -1).reshape(-1, 4)
        uvs = ((self.points[:, :2] + HALF) / (2 * HALF)).astype(np.float32)
        self.topology = Topology(quads.astype(np.int32), quads.astype(np.int32), np.zeros(len(quads), int),
                                 ["M_Face"], uvs, n * n)
        self.device = torch.device("cpu")
        self.num_vertices = n * n
        self.expression_bounds = None

    def vertices(self, identity, expression, frames: int = 1) -> torch.Tensor:
        return torch.as_tensor(self.points)[None].expand(frames, -1, -1) + 0.0 * identity.sum()


class FlatAlbedo:
    def per_vertex(self, coeffs: torch.Tensor, num_vertices: int, fill: float = 0.5) -> torch.Tensor:
        return coeffs[:1].expand(num_vertices, 3)


def groove(u: np.ndarray, v: np.ndarray, depth: float = 0.06, width: float = 0.04) -> np.ndarray:
    """A diagonal groove (cm, negative) across the plane's UV square."""
    dist = np.abs((u - 0.5) * math.cos(0.5) - (v - 0.5) * math.sin(0.5))
    return -depth * np.exp(-((dist / width) ** 2)) * ((np.abs(u - 0.5) < 0.4) & (np.abs(v - 0.5) < 0.4))


def groove_map(size: int, **kw) -> np.ndarray:
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, 1.0 - c)  # row 0 is v = 1
    return groove(u, v, **kw).astype(np.float32)


def plane_state(model: PlaneModel) -> FitState:
    state = FitState.single(1, 1, (IMAGE, IMAGE), FOCAL)
    state.translation = torch.tensor([[0.0, 0.0, DEPTH]])
    state.sh = LIGHT[None].clone()
    state.albedo = torch.full((1, 3), ALBEDO)
    return state


def render_photo(supersample: int = 4, **kw) -> np.ndarray:
    """The plane displaced by the groove, shaded exactly (analytic normals of the height field), averaged over
    each pixel's area: an sRGB photo in [0, 1], independent of the bump-mapping code under test."""
    n = IMAGE * supersample
    c = (np.arange(n) + 0.5) / supersample  # pixel coordinates of the samples
    px, py = np.meshgrid(c, c)
    # camera ray through (px, py) meets the plane z_cam = DEPTH: model x = X_cam, model y = -Y_cam
    x = (px - IMAGE / 2) * DEPTH / FOCAL
    y = -(py - IMAGE / 2) * DEPTH / FOCAL
    u, v = (x + HALF) / (2 * HALF), (y + HALF) / (2 * HALF)
    h = 1e-4
    du = (groove(u + h, v, **kw) - groove(u - h, v, **kw)) / (2 * h) / (2 * HALF)  # cm per cm
    dv = (groove(u, v + h, **kw) - groove(u, v - h, **kw)) / (2 * h) / (2 * HALF)
    n_model = np.stack([-du, -dv, np.ones_like(du)], -1)
    n_cam = n_model * np.array([1.0, -1.0, -1.0])  # MODEL_TO_OPENCV
    n_cam /= np.linalg.norm(n_cam, axis=-1, keepdims=True)
    shade = sh_shading(torch.as_tensor(n_cam, dtype=torch.float32)[None], LIGHT)[0].numpy()
    linear = (ALBEDO * shade).reshape(IMAGE, supersample, IMAGE, supersample, 3).mean((1, 3))
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(np.float32)


@pytest.fixture(scope="module")
def plane():
    model = PlaneModel()
    photo = render_photo()
    crop = FitCrop(0.0, 0.0, float(IMAGE), IMAGE)
    target = PhotoTargets([PhotoTarget.from_photo(photo, crop)])
    face = torch.ones(len(model.topology.triangles), dtype=torch.bool)
    return model, target, face


def detail_term(plane, **kw) -> DetailTerm:
    model, target, face = plane
    options = dict(sigma=0.01, band=32.0, erode=2.0, outlier=0.3, resolution=IMAGE)
    options.update(kw)
    return DetailTerm(model, target, FlatAlbedo(), face, **options)


def test_zero_map_shades_like_the_smooth_surface(plane):
    model, target, face = plane
    state = plane_state(model)
    scene = Scene(model, state)
    cam = scene.camera_vertices()
    frags = rasterize(cam, model.topology.triangles, scene.K(), (IMAGE, IMAGE))
    normals = pixel_normals(frags, cam)
    topo = model.topology
    uv = interpolate(frags, torch.as_tensor(topo.uvs), topo.triangle_uvs)

    def displaced(d: torch.Tensor) -> torch.Tensor:
        return displaced_normals(cam, frags, normals, uv, d, face, torch.as_tensor(topo.triangle_uvs),
                                 torch.as_tensor(topo.uvs))

    zero = displaced(torch.zeros(1, 1, 32, 32))
    assert torch.allclose(zero, normals, atol=1e-6)
    # a map rising along +u tilts the normal towards -u (model -x, camera -x)
    ramp = torch.linspace(0, 0.1, 32)[None, None, None, :].expand(1, 1, 32, 32).contiguous()
    tilted = displaced(ramp)
    centre = tilted[0, IMAGE // 2, IMAGE // 2]
    assert centre[0] < -0.01 and abs(float(centre[1])) < 1e-3


def test_detail_energy_prefers_the_true_groove(plane):
    model, _, _ = plane
    term = detail_term(plane)
    truth = torch.as_tensor(groove_map(64))[None, None]
    energies = {}
    for name, d in {"zero": 0 * truth, "truth": truth, "negated": -truth, "flipped": truth.flip(-1)}.items():
        state = plane_state(model)
        state.displacement = d
        with torch.no_grad():
            energies[name] = float(term(Scene(model, state)))
    assert energies["truth"] < 0.5 * energies["zero"]
    assert energies["negated"] > energies["zero"] and energies["flipped"] > energies["truth"]


def test_gradient_at_zero_points_towards_the_groove(plane):
    model, _, _ = plane
    term = detail_term(plane)
    state = plane_state(model)
    state.displacement = torch.zeros(1, 1, 64, 64, requires_grad=True)
    term(Scene(model, state)).sum().backward()
    truth = torch.as_tensor(groove_map(64))
    step = -state.displacement.grad[0, 0]
    assert float((step * truth).sum()) > 0  # descent moves the map towards the groove, not the ridge


def test_detail_stage_recovers_the_groove(plane):
    model, _, _ = plane
    term = detail_term(plane)
    prior = DisplacementPrior(smoothness=10.0, magnitude=0.0, sparsity=1.0, sparsity_eps=0.01, raised=30.0)
    state = plane_state(model)
    state.displacement = torch.zeros(1, 1, 64, 64)
    stage = {"name": "detail", "free": ["displacement"], "iterations": 60, "rounds": 1,
             "weights": {"detail": 1.0, "displacement_prior": 1.0}}
    run_stage(model, state, stage, {"detail": term, "displacement_prior": prior}, load_preset("fast")["optimizer"])
    fitted = state.displacement[0, 0].detach().numpy()
    truth = groove_map(64)
    inner = np.zeros_like(truth, bool)
    inner[12:-12, 12:-12] = True  # away from the plane's edges (the mask's border is eroded)
    err, zero = np.abs(fitted - truth)[inner].mean(), np.abs(truth)[inner].mean()
    assert err < 0.5 * zero, (err, zero)
    assert fitted[inner].min() < -0.5 * 0.06 and fitted[inner].max() < 0.01  # a groove, not a ridge


def test_line_prior_keeps_lines_and_drops_pits():
    d = torch.zeros(256, 256)
    d[80, 20:220] = -0.03  # a 0.3 mm groove along a row
    d[180, 120] = -0.03  # a pit of the same depth
    prior = DisplacementPrior(sparsity=1.0, line=0.1, line_length=6.0, line_width=1.0, line_floor=0.0)
    state = FitState.single(1, 1, (64, 64), 500.0)
    state.displacement = d[None, None]

    class _Scene:
        pass

    scene = _Scene()
    scene.state = state
    prior.update(scene)
    w = prior.texel_weight
    assert float(w[80, 120]) < 0.2 and float(w[180, 120]) > 0.5 and float(w[10, 10]) == pytest.approx(1.0)
    r = line_response(-d.clamp(max=0) * 10, 3.0, 0.5)
    assert r[80, 120] > 5 * r[180, 120]
    # a zero map (first round of a stage) gets uniform weights
    state.displacement = torch.zeros(1, 1, 256, 256)
    prior.update(scene)
    assert torch.all(prior.texel_weight == 1.0)


def test_photo_footprint_grows_with_upsampling():
    assert photo_footprint(2.0, 512, 512) > photo_footprint(1.0, 512, 512) > 0
    assert photo_footprint(1.0, 512, 256) < photo_footprint(1.0, 512, 512)

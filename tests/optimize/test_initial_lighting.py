"""The closed-form lighting start (fitter.energy.photometric.initial_lighting) on a dome rendered under a known
light and albedo: it recovers the light's direction and explains the photo; too few pixels give uniform light."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.energy.photometric import UNIFORM_LIGHT_SH0, PhotometricTerm, initial_lighting
from fitter.render import sh_directional, sh_shading
from fitter.scene import Scene
from fitter.state import FitState
from photos import photo_targets, rendered
from small_models import dome_model, uniform_albedo

IMAGE, FOCAL, DEPTH = 64, 320.0, 30.0
DIRECTION = np.array([-0.5, -0.4, -1.0])  # towards the light, camera frame: upper left, from the camera's side
LIGHT = sh_directional(DIRECTION, diffuse=0.8, ambient=0.3)
ALBEDO = torch.tensor([0.6, 0.45, 0.3])
LEVEL = 0.5  # the mean albedo the start fixes


def scene_and_term(frames: int = 1, away: bool = False) -> tuple[Scene, PhotometricTerm]:
    """A dome lit by LIGHT with albedo ALBEDO, its photos, and a state without light or albedo to start."""
    model = dome_model()
    truth = FitState.single(1, 1, (IMAGE, IMAGE), FOCAL, frames=frames)
    truth.translation = torch.tensor([[0.0, 0.0, DEPTH]]).repeat(frames, 1)
    if away:  # the last frame's dome is out of the picture
        truth.translation[-1, 0] = 40.0
    truth.sh, truth.albedo = LIGHT[None].repeat(frames, 1, 1), ALBEDO[None].clone()
    term = PhotometricTerm(model, photo_targets(rendered(model, truth, IMAGE)), uniform_albedo(model),
                           resolution=IMAGE)
    start = truth.detached()
    start.sh, start.albedo = None, None
    return Scene(model, start), term


def solve(frames: int = 1, away: bool = False, min_pixels: int = 20):
    scene, term = scene_and_term(frames, away)
    albedo, sh = initial_lighting(term, scene, size=IMAGE, rounds=3, level=LEVEL, min_pixels=min_pixels)
    return scene, term, albedo, sh


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, cos)))


class TestRecovery:
    """On a render of a known light and albedo: the band-1 SH (the light's direction) points at the light, the
    albedo's mean is the fixed level, and albedo x light reproduce the photo."""

    def test_direction(self):
        _, _, _, sh = solve()
        band1 = sh[0, 1:4].sum(-1).numpy()  # coefficients of (y, z, x)
        assert angle_deg(band1[[2, 0, 1]], DIRECTION) < 2.5  # 1.9-2.06 deg measured on different CPUs (BLAS kernels)

    def test_level_and_shapes(self):
        _, term, albedo, sh = solve()
        assert albedo.shape == (term.albedo.modes, 3) and sh.shape == (1, 9, 3)
        assert float(albedo[0].mean()) == pytest.approx(LEVEL, rel=1e-5)

    def test_explains_the_photo(self):
        scene, term, albedo, sh = solve()
        scene.state.albedo, scene.state.sh = albedo, sh
        r = term.render(Scene(scene.model, scene.state))
        mask = r["mask"][0]
        error = (r["colour"][0][mask] - r["photo"][0][mask]).abs().mean() / r["photo"][0][mask].mean()
        assert float(error) < 0.02

    def test_albedo_ratio(self):
        _, _, albedo, _ = solve()
        ratio = albedo[0] / albedo[0].mean()
        torch.testing.assert_close(ratio, ALBEDO / ALBEDO.mean(), rtol=0.05, atol=0.0)


class TestUniformFallback:
    """A frame with fewer compared pixels than min_pixels gets the uniform light of radiance 1 (shading 1)."""

    def test_too_few_pixels(self):
        _, _, _, sh = solve(min_pixels=10**6)
        expected = torch.zeros(1, 9, 3)
        expected[:, 0] = UNIFORM_LIGHT_SH0
        torch.testing.assert_close(sh, expected)
        normals = torch.nn.functional.normalize(torch.randn(1, 50, 3), dim=-1)
        torch.testing.assert_close(sh_shading(normals, sh), torch.ones(1, 50, 3))

    def test_per_frame(self):
        _, _, _, sh = solve(frames=2, away=True)
        assert float(sh[1, 0, 0]) == pytest.approx(UNIFORM_LIGHT_SH0) and float(sh[1, 1:].abs().max()) == 0.0
        band1 = sh[0, 1:4].sum(-1).numpy()
        assert angle_deg(band1[[2, 0, 1]], DIRECTION) < 2.5  # the frame in view is fitted as alone

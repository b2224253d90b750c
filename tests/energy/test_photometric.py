"""Unit tests of the photometric term (fitter.energy.photometric) on small analytic surfaces (a plane, a dome):
the value on a uniform render, the gradient in light, albedo and pose, per-frame values, the per-stage
settings (resolution, detail band), bump-mapped normals and the lighting start hook."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.crop import FitCrop
from fitter.energy.photometric import UNIFORM_LIGHT_SH0, PhotometricTerm
from fitter.render import SH_NEUTRAL, sh_directional
from fitter.scene import Scene
from fitter.state import FitState
from frames import one_frame, with_dtype
from numeric import pseudo_huber
from photos import photo_targets, rendered
from small_models import dome_model, in_float64, plane_model, uniform_albedo

IMAGE = 64  # photo and crop side (pixels); the plane at DEPTH fills all of it
FOCAL = 320.0
DEPTH = 30.0
SIGMA, DELTA = 0.02, 3.0
ALBEDO = 0.5
LIGHT = sh_directional((-0.5, -0.4, -1.0), diffuse=0.8, ambient=0.3)  # key light from the upper left


def constant_photo(linear) -> np.ndarray:
    return np.broadcast_to(np.asarray(linear, np.float32), (IMAGE, IMAGE, 3)).copy()


def state_for(model, frames: int = 1, light=LIGHT, dtype=torch.float32) -> FitState:
    state = FitState.single(model.num_identity, model.num_expression, (IMAGE, IMAGE), FOCAL, frames=frames)
    state.translation = torch.tensor([[0.0, 0.0, DEPTH]]).repeat(frames, 1)
    state.rotation = torch.stack([torch.linspace(-0.15, 0.15, frames), torch.linspace(0.1, -0.1, frames),
                                  torch.zeros(frames)], 1) if frames > 1 else state.rotation
    state.sh = light[None].repeat(frames, 1, 1)
    state.albedo = torch.full((1, 3), ALBEDO)
    return with_dtype(state, dtype)


def term_for(model, photos, dtype=torch.float32, **kw) -> PhotometricTerm:
    options = dict(sigma=SIGMA, robust_delta=DELTA, resolution=IMAGE, init_resolution=IMAGE)
    options.update(kw)
    return PhotometricTerm(model, photo_targets(photos), uniform_albedo(model, dtype), **options)


class TestPhotometricValue:
    """A uniformly lit plane of uniform albedo against a uniform photo: every compared pixel has the same
    residual, so the energy is sum_c rho((albedo * shading - photo_c) / sigma)."""

    def test_uniform_plane(self):
        model = plane_model()
        light_level = 1.2
        photo = (0.5, 0.62, 0.55)
        term = term_for(model, [constant_photo(photo)])
        state = state_for(model, light=light_level * SH_NEUTRAL)
        value = term(Scene(model, state))
        assert value.shape == (1,)
        expected = sum(pseudo_huber((ALBEDO * light_level - p) / SIGMA, DELTA) for p in photo)
        assert float(value[0]) == pytest.approx(expected, rel=1e-4)
        assert bool(term.render(Scene(model, state))["mask"].all())  # the plane fills the crop

    def test_zero_against_its_own_render(self):
        model = dome_model()
        state = state_for(model)
        own = rendered(model, state, IMAGE)[0]
        assert float(term_for(model, [own])(Scene(model, state))[0]) < 1e-6


class TestPhotometricGradient:
    """The analytic gradient in light, albedo and head rotation matches finite differences (float64 plane that
    fills the crop, so a small rotation moves no silhouette; the plane's shading depends on its normal only)."""

    def test_gradcheck(self):
        model = in_float64(plane_model())
        term = term_for(model, [constant_photo((0.3, 0.35, 0.4))], dtype=torch.float64)
        state = state_for(model, dtype=torch.float64)

        def energy(sh, albedo, rotation):
            s = state.detached()
            s.sh, s.albedo, s.rotation = sh, albedo, rotation
            return term(Scene(model, s))

        inputs = (state.sh.clone().requires_grad_(True), state.albedo.clone().requires_grad_(True),
                  torch.tensor([[0.05, -0.1, 0.02]], dtype=torch.float64, requires_grad=True))
        assert torch.autograd.gradcheck(energy, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)

    def test_rotation_gradient_is_not_zero(self):
        model = in_float64(plane_model())
        term = term_for(model, [constant_photo((0.3, 0.35, 0.4))], dtype=torch.float64)
        state = state_for(model, dtype=torch.float64)
        state.rotation = state.rotation.clone().requires_grad_(True)
        term(Scene(model, state)).sum().backward()
        assert float(state.rotation.grad.abs().max()) > 1.0  # the check above exercises the pose path


class TestPhotometricFrames:
    """Per-frame values (F,): each frame's value is its own render, in its own crop, against its own photo."""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_each_frame_alone(self, frames):
        model = dome_model()
        photos = [constant_photo((0.2 + 0.1 * f, 0.3, 0.25)) for f in range(frames)]
        crops = [FitCrop(4.0 * f, 2.0 * f, IMAGE - 6.0 * f, IMAGE) for f in range(frames)]
        state = state_for(model, frames)

        def term(f0: int, f1: int) -> PhotometricTerm:
            return PhotometricTerm(model, photo_targets(photos[f0:f1], crops[f0:f1]), uniform_albedo(model),
                                   sigma=SIGMA, robust_delta=DELTA, resolution=IMAGE)

        values = term(0, frames)(Scene(model, state))
        assert values.shape == (frames,)
        for f in range(frames):
            torch.testing.assert_close(values[f : f + 1], term(f, f + 1)(Scene(model, one_frame(state, f))),
                                       rtol=1e-5, atol=1e-6)
        assert len(set(values.tolist())) == frames


class TestPhotometricStageSettings:
    """configure(): a stage sets the render resolution; detail_band > 0 compares only high-passed images, so a
    uniform brightness offset costs nothing there, and a stage without it compares whole images again."""

    def test_resolution(self):
        model = dome_model()
        term = term_for(model, [constant_photo(0.3)])
        term.configure({"resolution": 32})
        r = term.render(Scene(model, state_for(model)))
        assert r["colour"].shape == (1, 32, 32, 3) and r["photo"].shape == (1, 32, 32, 3)

    def test_detail_band_ignores_a_uniform_offset(self):
        model = dome_model()
        state = state_for(model)
        own = rendered(model, state, IMAGE)[0]
        term = term_for(model, [own + 0.1])
        whole = float(term(Scene(model, state))[0])
        term.configure({"detail_band": 4.0})
        assert float(term(Scene(model, state))[0]) < 1e-6 * whole
        term.configure({})
        assert float(term(Scene(model, state))[0]) == pytest.approx(whole)


class TestPhotometricDisplacement:
    """With a displacement map on the state, normals are bump-mapped: a zero map renders as the smooth surface,
    a ramp changes the shading."""

    def test_zero_and_ramp(self):
        model = dome_model()
        state = state_for(model)
        term = term_for(model, [constant_photo(0.3)])
        smooth = term(Scene(model, state))
        state.displacement = torch.zeros(1, 1, 16, 16)
        torch.testing.assert_close(term(Scene(model, state)), smooth)
        state.displacement = torch.linspace(0, 0.3, 16)[None, None, None, :].expand(1, 1, 16, 16).contiguous()
        assert abs(float(term(Scene(model, state))[0]) - float(smooth[0])) > 1e-3 * float(smooth[0])


class TestPhotometricInitialise:
    """initialise() fills a missing light and albedo with the closed-form start, and keeps existing ones."""

    def test_fills_only_what_is_missing(self):
        model = dome_model()
        term = term_for(model, [constant_photo(0.3)], init_resolution=32)
        state = state_for(model)
        state.sh, state.albedo = None, None
        term.initialise(Scene(model, state))
        assert state.sh.shape == (1, 9, 3) and state.albedo.shape == (1, 3)
        kept = state_for(model)
        sh = kept.sh.clone()
        term.initialise(Scene(model, kept))
        assert torch.equal(kept.sh, sh)
        assert float(state.sh[0, 0, 0]) != pytest.approx(UNIFORM_LIGHT_SH0)  # fitted, not the fallback

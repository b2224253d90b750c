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
    """The older image comparison (pseudo-Huber per channel, mean over compared pixels) unless ``kw`` says."""
    options = dict(sigma=SIGMA, robust_delta=DELTA, resolution=IMAGE, init_resolution=IMAGE, loss="pseudo_huber",
                   domain="overlap")
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
                                   sigma=SIGMA, robust_delta=DELTA, resolution=IMAGE, loss="pseudo_huber",
                                   domain="overlap")

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


def segmented_targets(photo: np.ndarray, valid: np.ndarray):
    """A photo whose segmented skin (the fixed comparison domain) is ``valid``."""
    targets = photo_targets([photo])
    targets.frames[0].valid = valid
    targets.frames[0].segmented = True
    targets.frames[0]._pyramid.clear()
    return targets


class TestFixedDomain:
    """domain = "fixed": the mean over the segmented skin of c rho(r) + (1 - c) kappa, with the Geman-McClure loss
    of the colour residual's length; hiding a pixel from the render never lowers the energy below kappa."""

    def test_uniform_plane_geman_mcclure(self):
        model = plane_model()
        photo = (0.5, 0.62, 0.55)
        term = PhotometricTerm(model, segmented_targets(constant_photo(photo), np.ones((IMAGE, IMAGE), bool)),
                               uniform_albedo(model), sigma=SIGMA, robust_delta=DELTA, resolution=IMAGE)
        state = state_for(model, light=1.2 * SH_NEUTRAL)
        x = np.linalg.norm([(ALBEDO * 1.2 - p) / SIGMA for p in photo])
        expected = DELTA**2 * x**2 / (x**2 + DELTA**2)
        assert float(term(Scene(model, state))[0]) == pytest.approx(expected, rel=1e-3)

    def test_uncovered_skin_costs_kappa(self):
        model = dome_model()
        state = state_for(model)
        own = rendered(model, state, IMAGE)[0]
        covered = term_for(model, [own]).render(Scene(model, state))["mask"][0].numpy()
        valid = np.ones((IMAGE, IMAGE), bool)  # the whole crop is "skin", the dome covers only part of it
        term = PhotometricTerm(model, segmented_targets(own, valid), uniform_albedo(model), sigma=SIGMA,
                               robust_delta=DELTA, resolution=IMAGE, uncovered_cost=0.5)
        value = float(term(Scene(model, state))[0])
        uncovered = 1.0 - covered.mean()
        # the dome explains its own pixels exactly; antialiasing blurs the outline by a pixel
        assert value == pytest.approx(0.5 * DELTA**2 * uncovered, rel=0.1)

    def test_hiding_from_a_bad_region_does_not_pay(self):
        """A face that slides off pixels it cannot explain gains nothing: those pixels cost about kappa whether
        covered (saturated loss) or not; with the older mean over compared pixels, sliding off paid."""
        model = dome_model()
        state = state_for(model)
        own = rendered(model, state, IMAGE)[0]
        mask = term_for(model, [own]).render(Scene(model, state))["mask"][0].numpy()
        bad = own.copy()
        bad[:, : IMAGE // 2][mask[:, : IMAGE // 2]] = 1.0  # the left half of the face is unexplainable
        moved = state_for(model)
        moved.translation = moved.translation + torch.tensor([[3.0, 0.0, 0.0]])  # slide right, off the bad half
        fixed = PhotometricTerm(model, segmented_targets(bad, mask), uniform_albedo(model), sigma=SIGMA,
                                robust_delta=DELTA, resolution=IMAGE)
        old = term_for(model, [bad])
        old.target = segmented_targets(bad, mask)
        assert float(fixed(Scene(model, moved))[0]) >= 0.95 * float(fixed(Scene(model, state))[0])
        assert float(old(Scene(model, moved))[0]) < float(old(Scene(model, state))[0])

    def test_coverage_gives_the_outline_a_gradient(self):
        model = dome_model()
        state = state_for(model)
        own = rendered(model, state, IMAGE)[0]
        valid = np.ones((IMAGE, IMAGE), bool)
        term = PhotometricTerm(model, segmented_targets(own, valid), uniform_albedo(model), sigma=SIGMA,
                               robust_delta=DELTA, resolution=IMAGE)
        state.translation = state.translation.clone().requires_grad_(True)
        term(Scene(model, state)).sum().backward()
        # moving the dome towards the camera covers more skin: the energy falls, so d E / d z > 0
        assert float(state.translation.grad[0, 2]) > 0


class TestBackgroundCost:
    """background_cost: each background pixel the front of the face covers costs background_cost x kappa (over
    the domain's size), so the face's outline is held to the photo's own outline, not only the masks'."""

    def setup_method(self):
        self.model = dome_model()
        self.state = state_for(self.model)
        own = rendered(self.model, self.state, IMAGE)[0]
        self.covered = term_for(self.model, [own]).render(Scene(self.model, self.state))["mask"][0].numpy()
        self.own = own

    def term(self, cost: float, below_brows: bool = False) -> PhotometricTerm:
        targets = segmented_targets(self.own, self.covered)
        background = np.zeros((IMAGE, IMAGE), bool)
        background[:, : IMAGE // 3] = True  # the photo says: the left third is background
        targets.frames[0]._background = background
        targets.frames[0].brow_line = (0.0, IMAGE / 2, 0.0, 1.0)  # a level brow line across the middle
        return PhotometricTerm(self.model, targets, uniform_albedo(self.model), sigma=SIGMA, robust_delta=DELTA,
                               resolution=IMAGE, background_cost=cost, background_below_brows=below_brows)

    def test_covered_background_costs(self):
        base = float(self.term(0.0)(Scene(self.model, self.state))[0])
        value = float(self.term(0.5)(Scene(self.model, self.state))[0])
        spill = (self.covered[:, : IMAGE // 3]).sum() / self.covered.sum()
        assert spill > 0.05
        assert value - base == pytest.approx(0.5 * DELTA**2 * spill, rel=0.1)

    def test_the_outline_is_pushed_off_the_background(self):
        state = state_for(self.model)
        state.translation = state.translation.clone().requires_grad_(True)
        self.term(1.0)(Scene(self.model, state)).sum().backward()
        # moving the dome right (+x) uncovers the background on the left: the energy falls
        assert float(state.translation.grad[0, 0]) < 0

    def test_below_the_brows_only(self):
        """background_below_brows: background above the brow line (a fringe over the forehead) costs nothing."""
        base = float(self.term(0.0)(Scene(self.model, self.state))[0])
        value = float(self.term(0.5, below_brows=True)(Scene(self.model, self.state))[0])
        spill = (self.covered[IMAGE // 2 :, : IMAGE // 3]).sum() / self.covered.sum()
        assert value - base == pytest.approx(0.5 * DELTA**2 * spill, rel=0.1)


class TestEstimatedNoise:
    """`noise = "estimated"`: each frame's sigma is the larger of the configured one and the robust scale of its
    residuals at the start; a photo the model explains keeps the floor, a noisy one weighs less."""

    def noisy(self, model, state, std: float, seed: int, frame: int = 0) -> np.ndarray:
        """The state's own render of ``frame`` with Gaussian noise of ``std`` a channel."""
        own = rendered(model, state, IMAGE)[frame]
        return (own + np.random.default_rng(seed).normal(0, std, own.shape)).astype(np.float32)

    def test_the_noise_of_each_frame(self):
        model = dome_model()
        state = state_for(model, frames=2)
        photos = [rendered(model, state, IMAGE)[0], self.noisy(model, state, 0.08, 1, frame=1)]
        term = term_for(model, photos, noise="estimated")
        term.initialise(Scene(model, state))
        sigma = term.sigma.flatten()
        assert float(sigma[0]) == pytest.approx(SIGMA)  # explained to below the floor: the floor stays
        assert float(sigma[1]) == pytest.approx(0.08, rel=0.1)  # Gaussian noise of 0.08 a channel is read back
        assert term.diagnostics(Scene(model, state))["noise_sigma"] == pytest.approx(sigma.tolist())

    def test_noisier_photo_weighs_less(self):
        model = dome_model()
        state = state_for(model)
        photo = [self.noisy(model, state, 0.08, 2)]
        fixed, estimated = term_for(model, photo), term_for(model, photo, noise="estimated")
        estimated.initialise(Scene(model, state))
        assert float(estimated(Scene(model, state))[0]) < 0.2 * float(fixed(Scene(model, state))[0])

    def test_fixed_is_the_configured_sigma(self):
        model = dome_model()
        state = state_for(model)
        term = term_for(model, [self.noisy(model, state, 0.08, 3)])
        term.initialise(Scene(model, state))
        assert term.sigma == SIGMA

"""Unit checks of the detail term (fitter.energy.detail) that test_detail.py leaves out, on a real (tiny)
MorphableModel: zero at the map that made the photo, blind to a uniform gain, the gradient in the map against
finite differences, and per-frame values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.energy.detail import DetailTerm
from fitter.energy.photo_target import PhotoTargets, face_triangle_mask
from fitter.render import sh_directional
from fitter.scene import Scene
from fitter.state import FitState
from frames import repeat_frames
from numeric import autograd_gradient, central_difference
from photos import photo_targets, rendered
from small_models import dome_model, uniform_albedo

IMAGE, FOCAL, DEPTH = 64, 320.0, 30.0
LIGHT = sh_directional((-0.6, -0.4, -1.0), diffuse=0.8, ambient=0.3)
MAP = 32  # displacement map side (texels)
# band and erode are given at the 512 reference crop: 32 -> 4 pixels, 8 -> 1 pixel of the 64 render
OPTIONS = dict(sigma=0.01, robust_delta=2.0, band=32.0, erode=8.0, outlier=1.0, grazing=0.2, footprint=0.0,
               resolution=IMAGE)


def groove(depth: float = 0.08) -> torch.Tensor:
    """A diagonal groove (cm, negative) across the UV tile, so the map slopes along both u and v: (1, 1, MAP, MAP)."""
    c = (torch.arange(MAP) + 0.5) / MAP
    u, v = c[None, :], (1.0 - c)[:, None]  # row 0 is v = 1
    across = (u - v - 0.1) / math.sqrt(2.0)
    return (-depth * torch.exp(-((across / 0.06) ** 2)))[None, None].contiguous()


def dome_state(model, frames: int = 1) -> FitState:
    state = FitState.single(model.num_identity, model.num_expression, (IMAGE, IMAGE), FOCAL, frames=frames)
    state.translation = torch.tensor([[0.0, 0.0, DEPTH]]).repeat(frames, 1)
    if frames > 1:
        state.rotation = torch.stack([torch.linspace(-0.1, 0.1, frames), torch.linspace(0.15, -0.15, frames),
                                      torch.zeros(frames)], 1)
    state.sh = LIGHT[None].repeat(frames, 1, 1)
    state.albedo = torch.tensor([[0.6, 0.45, 0.35]])
    return state


def photos_of(model, state: FitState, displacement: torch.Tensor | None, gain: float = 1.0) -> PhotoTargets:
    """Photos of the state's render with ``displacement`` (bump-mapped Lambertian, as the fitter shades)."""
    shown = state.detached()
    shown.displacement = displacement
    return photo_targets([gain * image for image in rendered(model, shown, IMAGE)])


def detail_term(model, target: PhotoTargets) -> DetailTerm:
    return DetailTerm(model, target, uniform_albedo(model), face_triangle_mask(model), **OPTIONS)


def with_map(state: FitState, displacement: torch.Tensor) -> FitState:
    out = state.detached()
    out.displacement = displacement.clone()
    return out


class TestDetailValue:
    """The map that made the photo explains its fine shading (energy ~0); a uniform gain of the photo (light or
    albedo level) is not detail."""

    def test_zero_at_the_true_map_and_not_at_zero(self):
        model = dome_model()
        state = dome_state(model)
        term = detail_term(model, photos_of(model, state, groove()))
        at_truth = float(term(Scene(model, with_map(state, groove())))[0])
        at_zero = float(term(Scene(model, with_map(state, 0 * groove())))[0])
        assert at_zero > 0.5 and at_truth < 1e-3 * at_zero, (at_truth, at_zero)

    def test_uniform_gain_costs_nothing(self):
        model = dome_model()
        state = dome_state(model)
        term = detail_term(model, photos_of(model, state, None, gain=1.3))
        assert float(term(Scene(model, with_map(state, 0 * groove())))[0]) < 1e-4


class TestDetailGradient:
    """d energy / d texel by backpropagation matches a central difference on the texels that matter most
    (float32 throughout: the term's coarse render is float32, so the step is 1e-3 cm and the tolerance 2 %)."""

    def test_central_differences(self):
        model = dome_model()
        state = dome_state(model)
        term = detail_term(model, photos_of(model, state, groove()))
        start = 0.5 * groove()

        def energy(d):
            return term(Scene(model, with_map(state, d))).sum()

        grad = autograd_gradient(energy, start)
        largest = torch.topk(grad.abs().reshape(-1), 4).indices
        for flat in largest.tolist():
            index = np.unravel_index(flat, grad.shape)
            numeric = central_difference(energy, start, index, 1e-3)
            assert float(grad[index]) == pytest.approx(numeric, rel=2e-2), index


class TestDetailFrames:
    """Per-frame values (F,): frames alike get the single-frame value, and a frame's value follows its own photo
    only. (Frames are not fully independent: residual weights are normalised by the median brightness of the
    render over all frames, so a frame alone weighs its pixels differently.)"""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_frames_alike(self, frames):
        model = dome_model()
        state = dome_state(model, 1)
        photos = photos_of(model, state, groove())
        many = repeat_frames(state, frames)
        values = detail_term(model, PhotoTargets(photos.frames * frames))(Scene(model, with_map(many, 0.3 * groove())))
        single = detail_term(model, photos)(Scene(model, with_map(state, 0.3 * groove())))
        assert values.shape == (frames,)
        torch.testing.assert_close(values, single.expand(frames), rtol=1e-5, atol=1e-6)

    def test_a_frame_follows_its_own_photo(self):
        model = dome_model()
        state = dome_state(model, 3)
        photos = photos_of(model, state, groove())
        flat = photos_of(model, state, None)
        mixed = PhotoTargets(photos.frames[:2] + flat.frames[2:])  # frame 2 now shows no groove
        d = with_map(state, groove())
        values = detail_term(model, photos)(Scene(model, d))
        changed = detail_term(model, mixed)(Scene(model, d))
        torch.testing.assert_close(changed[:2], values[:2])
        assert float(changed[2]) > 10 * float(values[2])

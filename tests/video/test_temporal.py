"""The temporal term (fitter.energy.temporal): a robust acceleration penalty per second on head pose and
expressions, that respects segments, continues from context instants and returns per-image values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.energy.base import TermUnavailable, pseudo_huber
from fitter.energy.temporal import CONTEXT_KEY, TemporalTerm, build, expression_sigmas
from fitter.energy.base import TermContext
from fitter.evidence import Evidence
from fitter.optimize.presets import load_preset
from fitter.scene import Scene
from fitter.state import FitState
from sequences import moving_face, sequence_evidence

SIGMA_R, SIGMA_T, SIGMA_E, DELTA = math.radians(30.0), 10.0, 5.0, 3.0


def track_state(x: np.ndarray, expressions: int = 2) -> FitState:
    """A state whose translation x follows ``x`` (T,), everything else still."""
    state = FitState.single(3, expressions, (64, 64), 100.0, frames=len(x))
    state.translation = state.translation.clone()
    state.translation[:, 0] = torch.as_tensor(x, dtype=torch.float32)
    return state


def term(times, segments=None, expressions: int = 2) -> TemporalTerm:
    segments = np.zeros(len(times), np.int64) if segments is None else np.asarray(segments)
    return TemporalTerm(np.asarray(times, float), segments, SIGMA_R, SIGMA_T, np.full(expressions, SIGMA_E), DELTA)


def test_value_of_a_constant_acceleration():
    """x = a t^2 / 2: every triple has acceleration a; energy per triple rho(a / sigma) * dt, on its last instant."""
    a, fps = 40.0, 10.0
    t = np.arange(5) / fps
    energy = term(t)(Scene(None, track_state(0.5 * a * t**2)))
    expected = float(pseudo_huber(torch.tensor(a / SIGMA_T), DELTA)) / fps
    torch.testing.assert_close(energy, torch.tensor([0, 0, expected, expected, expected]), rtol=1e-4, atol=1e-5)


def test_per_second_at_any_frame_rate():
    """The same motion sampled at 10 and 40 fps: the same accelerations, and about the same total (an integral
    over time), so one setting means the same at any fps or --every."""
    def total(fps):
        t = np.arange(int(2 * fps) + 1) / fps
        x = 3.0 * np.sin(2 * np.pi * 0.5 * t)
        tm = term(t)
        scaled, _, _, _ = tm.accelerations(Scene(None, track_state(x)))
        return float(tm(Scene(None, track_state(x))).sum()), scaled[:, 3].abs().max().item()
    (e10, a10), (e40, a40) = total(10.0), total(40.0)
    assert abs(a10 - a40) / a40 < 0.1  # peak acceleration (in sigmas) the same: 3 (2 pi 0.5)^2 / 10
    assert abs(e10 - e40) / e40 < 0.15
    # uneven intervals (frames dropped) measure the same acceleration
    t = np.array([0.0, 0.1, 0.3, 0.4, 0.7])
    scaled, _, _, _ = term(t).accelerations(Scene(None, track_state(0.5 * 40.0 * t**2)))
    torch.testing.assert_close(scaled[:, 3], torch.full((3,), 40.0 / SIGMA_T))


def test_segments_are_not_linked():
    t = np.arange(6) / 10.0
    x = np.array([0.0, 0.0, 0.0, 5.0, 5.0, 5.0])  # a cut between instants 2 and 3
    energy = term(t, [0, 0, 0, 1, 1, 1])(Scene(None, track_state(x)))
    assert float(energy.abs().sum()) == 0.0
    assert float(term(t)(Scene(None, track_state(x))).sum()) > 0  # linked, the jump costs


def test_context_instants_continue_the_track():
    """Constant instants before the fitted ones: the first fitted instants are judged against them."""
    t = np.arange(3) / 10.0 + 0.2
    state = track_state(np.zeros(3))
    assert float(term(t)(Scene(None, state)).sum()) == 0.0
    state.extras[CONTEXT_KEY] = {"rotation": torch.zeros(2, 3), "translation": torch.tensor([[3.0, 0, 60], [1.0, 0, 60]]),
                                 "expression": torch.zeros(2, 2), "times": torch.tensor([0.0, 0.1])}
    energy = term(t)(Scene(None, state))
    assert energy[0] > 0 and energy[1] > 0 and energy[2] == 0  # the context's motion stops at instant 0


def test_wide_expressions_get_more_tolerance():
    sig = expression_sigmas(["jawOpen", "browDown_L", "eyeBlink_L"], 5.0, ["jawOpen", "eyeBlink_L"], 30.0)
    np.testing.assert_allclose(sig, [150.0, 5.0, 150.0])
    with pytest.raises(TermUnavailable, match="name none"):
        expression_sigmas(["a"], 5.0, ["jawOpen"], 30.0)


def test_gradient_matches_finite_differences():
    t = torch.tensor([0.0, 0.1, 0.25, 0.3, 0.4], dtype=torch.float64)
    tm = term(t.numpy(), expressions=2)
    tm.times = t
    tm.sigma_expression = tm.sigma_expression.double()
    state = FitState.single(3, 2, (64, 64), 100.0, frames=5)
    g = torch.Generator().manual_seed(0)
    values = [torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.2, torch.randn(5, 3, generator=g, dtype=torch.float64),
              torch.rand(5, 2, generator=g, dtype=torch.float64)]

    def energy(rot, trans, expr):
        state.rotation, state.translation, state.expression = rot, trans, expr
        state.frame_view = torch.zeros(5, dtype=torch.int64)
        return tm(Scene(None, state))

    assert torch.autograd.gradcheck(energy, [v.requires_grad_() for v in values])


def test_per_image_values_and_build(ict):
    """Built from clip evidence: (F,) values; photos without times cannot use it."""
    preset = load_preset("fast")
    state = moving_face(ict, 6, 10.0)
    evidence = sequence_evidence(ict, state, 10.0)
    built = build(TermContext(ict, evidence, preset, [1100.0]))
    assert built(Scene(ict, state)).shape == (6,)
    photos = Evidence([type(f)(f.face, f.image_size) for f in evidence.frames])
    with pytest.raises(TermUnavailable, match="capture times"):
        build(TermContext(ict, photos, preset, [1100.0]))

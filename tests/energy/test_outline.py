"""Unit tests of the outline term (fitter.energy.outline): the background's intrusion field, its bilinear
sampling, and the term on a dome whose left side lies over a background strip (value, direction of the pull,
nothing charged off the background)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.crop import FitCrop
from fitter.energy.outline import OutlineTerm, intrusion_field, sample_field
from fitter.scene import Scene
from fitter.state import FitState
from small_models import dome_model

IMAGE = 64
FOCAL = 320.0
DEPTH = 30.0
SIGMA = 0.01


def strip(width: int, size: int = IMAGE) -> np.ndarray:
    """(size, size) bool background: the ``width`` leftmost columns."""
    background = np.zeros((size, size), bool)
    background[:, :width] = True
    return background


class TestIntrusionField:
    def test_distance_from_pixel_centre_to_the_edge(self):
        field = intrusion_field(strip(10, 32))
        assert field[5, 9] == pytest.approx(0.5, abs=1e-3)  # centre x = 9.5, edge at x = 10
        assert field[5, 0] == pytest.approx(9.5, abs=1e-3)
        assert field[5, 10] == pytest.approx(-0.5, abs=1e-3)  # off the background: negative
        assert field[5, 20] == pytest.approx(-10.5, abs=1e-3)

    def test_no_background_no_field(self):
        assert (intrusion_field(np.zeros((16, 16), bool)) < 0).all()


class TestSampleField:
    def test_pixel_centres_and_outside(self):
        field = torch.as_tensor(intrusion_field(strip(10, 32)))
        points = torch.tensor([[0.5, 3.5], [9.5, 20.5], [5.0, 7.5], [10.0, 5.0], [40.0, 5.0]])
        values = sample_field(field, points)
        assert values[:4].tolist() == pytest.approx([9.5, 0.5, 5.0, 0.0], abs=1e-3)  # 0 on the edge itself
        assert float(values[4]) < 0  # off the crop: as its border, not background


class TestOutlineTerm:
    """A dome seen head-on fills the middle of a 64 px crop; a strip of background on the left lies under its
    left side."""

    def setup_method(self):
        self.model = dome_model()
        self.crop = FitCrop(0.0, 0.0, float(IMAGE), IMAGE)

    def state(self, shift: float = 0.0) -> FitState:
        state = FitState.single(self.model.num_identity, self.model.num_expression, (IMAGE, IMAGE), FOCAL)
        state.translation = torch.tensor([[shift, 0.0, DEPTH]])
        return state

    def term(self, width: int, robust_delta: float = 0.0) -> OutlineTerm:
        field = torch.as_tensor(intrusion_field(strip(width)))
        return OutlineTerm(self.model, [self.crop], [field], sigma=SIGMA, points=10_000, robust_delta=robust_delta)

    def test_value_is_the_mean_squared_intrusion(self):
        scene = Scene(self.model, self.state())
        pix, _ = scene.project(scene.vertices_at(torch.arange(self.model.num_vertices)))
        x = pix[0, :, 0].numpy()
        assert x.min() < 20  # the dome reaches over the strip
        inside = np.clip(20 - x, 0, None)  # a point's distance into a 20-column strip (pixel-corner x)
        expected = np.mean((inside / (SIGMA * IMAGE)) ** 2)
        assert float(self.term(20)(scene)[0]) == pytest.approx(expected, rel=0.05)

    def test_the_face_is_pushed_off_the_background(self):
        state = self.state()
        state.translation = state.translation.clone().requires_grad_(True)
        self.term(20)(Scene(self.model, state)).sum().backward()
        assert float(state.translation.grad[0, 0]) < 0  # moving right (+x) takes the dome off the strip

    def test_background_the_face_does_not_reach_costs_nothing(self):
        scene = Scene(self.model, self.state())
        pix, _ = scene.project(scene.vertices_at(torch.arange(self.model.num_vertices)))
        assert pix[0, :, 0].min() > 3
        assert float(self.term(3)(scene)[0]) == 0.0
        assert float(self.term(20)(scene)[0]) > 0.0

    def test_robust_cost_saturates(self):
        """robust_delta: a vertex deep in the background costs at most delta^2 (GrabCut may be wrong there)."""
        scene = Scene(self.model, self.state())
        quadratic = float(self.term(40)(scene)[0])
        robust = float(self.term(40, robust_delta=1.0)(scene)[0])
        assert 0 < robust <= 1.0 < quadratic  # delta^2 = 1 bounds the mean; the quadratic cost is far above it

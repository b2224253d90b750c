"""The sRGB transfer curve (fitter.common.colour): the standard's known points, round trips, clipping, and the
same numbers from numpy and torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.common.colour import linear_to_srgb, srgb_to_linear

# (linear, encoded) pairs of IEC 61966-2-1: the ends, the toe's end, mid grey and 18 % grey
KNOWN = [(0.0, 0.0), (1.0, 1.0), (0.0031308, 0.0404500), (0.2140411, 0.5), (0.5, 0.7353570), (0.18, 0.4613561)]


class TestKnownPoints:
    """The curve passes through the standard's values, both ways."""

    @pytest.mark.parametrize("linear, encoded", KNOWN)
    def test_both_ways(self, linear, encoded):
        assert float(linear_to_srgb(np.float64(linear))) == pytest.approx(encoded, abs=2e-6)
        assert float(srgb_to_linear(np.float64(encoded))) == pytest.approx(linear, abs=2e-6)

    def test_toe_is_linear(self):
        x = np.array([0.0005, 0.001, 0.003])
        np.testing.assert_allclose(linear_to_srgb(x), 12.92 * x)


class TestRoundTrip:
    """encode(decode(x)) = x on [0, 1]; the curve is increasing; encoding clips to [0, 1]."""

    def test_numpy(self):
        x = np.linspace(0, 1, 1001)
        np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-9)
        np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-9)
        assert np.all(np.diff(linear_to_srgb(x)) > 0)

    def test_torch(self):
        x = torch.linspace(0, 1, 1001, dtype=torch.float64)
        torch.testing.assert_close(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-9, rtol=0)
        assert isinstance(linear_to_srgb(x), torch.Tensor)

    def test_clipping(self):
        np.testing.assert_allclose(linear_to_srgb(np.array([-0.2, 1.5])), [0.0, 1.0], atol=1e-12)
        torch.testing.assert_close(linear_to_srgb(torch.tensor([-0.2, 1.5])), torch.tensor([0.0, 1.0]))


class TestNumpyTorchAgree:
    """One curve: numpy arrays and torch tensors give the same numbers (and keep their type)."""

    def test_same_numbers(self):
        x = np.random.default_rng(0).random(500)
        t = torch.as_tensor(x)
        np.testing.assert_allclose(linear_to_srgb(t).numpy(), linear_to_srgb(x), atol=1e-12)
        np.testing.assert_allclose(srgb_to_linear(t).numpy(), srgb_to_linear(x), atol=1e-12)
        assert isinstance(srgb_to_linear(x), np.ndarray)

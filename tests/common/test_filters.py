"""Image filters (fitter.common.filters) on batched images (F, H, W, C) and masks (F, H, W)."""
from __future__ import annotations

import pytest
import torch

from fitter.common.filters import KERNEL_RADIUS_SIGMAS, gaussian_blur, high_pass, masked_blur, morphology

SIGMA = 2.0
RADIUS = int(KERNEL_RADIUS_SIGMAS * SIGMA)  # the kernel's reach: only the border within it sees the padding


def square_mask(size: int = 32, lo: int = 8, hi: int = 24, frames: int = 1) -> torch.Tensor:
    m = torch.zeros(frames, size, size, dtype=torch.bool)
    m[:, lo:hi, lo:hi] = True
    return m


class TestGaussianBlur:
    """A normalised kernel: a constant stays constant away from the (zero-padded) border; a point spreads into
    a symmetric bump of total weight 1; frames and channels are blurred separately."""

    def test_constant_inside(self):
        x = torch.full((2, 24, 24, 3), 0.7)
        y = gaussian_blur(x, SIGMA)
        assert y.shape == x.shape
        inner = y[:, RADIUS:-RADIUS, RADIUS:-RADIUS]
        torch.testing.assert_close(inner, torch.full_like(inner, 0.7))
        assert float(y[0, 0, 0, 0]) < 0.7  # the padding is zero

    def test_point(self):
        x = torch.zeros(2, 25, 25, 2)
        x[0, 12, 12, 1] = 1.0
        y = gaussian_blur(x, SIGMA)
        assert float(y[0, ..., 1].sum()) == pytest.approx(1.0, rel=1e-5)
        torch.testing.assert_close(y[0, ..., 1], y[0, ..., 1].flip(0).flip(1).T.contiguous())
        assert float(y[1].abs().max()) == 0.0 and float(y[0, ..., 0].abs().max()) == 0.0
        # the spread is about sigma: second moment along x
        offsets = torch.arange(25, dtype=torch.float32) - 12
        variance = float((y[0, ..., 1].sum(0) * offsets**2).sum())
        assert variance == pytest.approx(SIGMA**2, rel=0.1)


class TestMaskedBlur:
    """The local mean over the mask: values outside the mask do not leak in."""

    def test_ignores_outside(self):
        mask = square_mask()[..., None].float()
        x = torch.where(mask > 0, torch.full_like(mask, 0.4), torch.full_like(mask, 100.0))
        y = masked_blur(x, mask, SIGMA)
        torch.testing.assert_close(y[mask > 0], torch.full_like(y[mask > 0], 0.4))


class TestHighPass:
    """x minus its masked blur, inside the mask: zero for a constant (up to the mask's edge), zero outside, and
    it keeps a fine pattern."""

    def test_constant_is_zero_inside(self):
        mask = square_mask()[..., None].float()
        x = torch.full((1, 32, 32, 1), 3.0) + 50.0 * (1 - mask)  # something else outside the mask
        y = high_pass(x, mask, SIGMA)
        assert float(y.abs().max()) < 1e-5

    def test_keeps_fine_detail(self):
        mask = torch.ones(1, 32, 32, 1)
        stripes = (torch.arange(32) % 2).float()[None, None, :, None].expand(1, 32, 32, 1) * 0.2
        y = high_pass(stripes, mask, SIGMA)
        inner = y[:, RADIUS:-RADIUS, RADIUS:-RADIUS]
        torch.testing.assert_close(inner.abs(), torch.full_like(inner, 0.1), atol=1e-3, rtol=0)


class TestMorphology:
    """Erosion and dilation by a disc of the radius, per frame; radius 0 leaves the mask."""

    @pytest.mark.parametrize("radius", [1, 3])
    def test_erode_square(self, radius):
        eroded = morphology(square_mask(frames=2), radius)
        assert torch.equal(eroded, square_mask(lo=8 + radius, hi=24 - radius, frames=2))

    @pytest.mark.parametrize("radius", [1, 3])
    def test_dilate_square(self, radius):
        dilated = morphology(square_mask(), radius, dilate=True)[0]
        rows, cols = dilated.nonzero().unbind(1)
        assert (int(rows.min()), int(rows.max())) == (8 - radius, 23 + radius)
        assert (int(cols.min()), int(cols.max())) == (8 - radius, 23 + radius)
        assert bool(dilated[square_mask()[0]].all())  # contains the square
        if radius > 1:  # a disc, not a square: the corners round off
            assert not bool(dilated[8 - radius, 8 - radius])

    def test_frames_apart_and_radius_zero(self):
        masks = torch.stack([square_mask()[0], torch.zeros(32, 32, dtype=torch.bool)])
        out = morphology(masks, 2, dilate=True)
        assert bool(out[0].any()) and not bool(out[1].any())
        assert morphology(masks, 0) is masks

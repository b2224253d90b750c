"""Bilinear UV-map look-up (fitter.common.uv_lookup): texel centres with row 0 at v = 1, interpolation between
them, the clamped border, UDIM tiles, and the same numbers (and a gradient) from torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.common.uv_lookup import sample_map, sample_maps

H, W = 4, 5
MAP = np.arange(H * W, dtype=np.float64).reshape(H, W) ** 1.5  # no two texels alike, not linear in (r, c)


def centre(r: float, c: float, tile: int = 0) -> list[float]:
    """The UV of texel (r, c)'s centre."""
    return [tile + (c + 0.5) / W, 1.0 - (r + 0.5) / H]


def test_texel_centres_read_their_texel_row_zero_at_the_top():
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    uv = np.array([centre(r, c) for r, c in zip(rows.ravel(), cols.ravel())])
    np.testing.assert_allclose(sample_map(MAP, uv), MAP.ravel(), atol=1e-12)


def test_between_centres_is_bilinear():
    got = sample_map(MAP, np.array([centre(1.25, 2.5)]))[0]
    top, bottom = (MAP[1, 2] + MAP[1, 3]) / 2, (MAP[2, 2] + MAP[2, 3]) / 2
    assert got == pytest.approx(0.75 * top + 0.25 * bottom, abs=1e-12)


def test_border_repeats_the_edge_texels():
    uv = np.array([[-0.3, 1.4], [0.0, 1.0], [1.2, -0.5], [centre(0, 2)[0], 1.0]])
    np.testing.assert_allclose(sample_map(MAP, uv), [MAP[0, 0], MAP[0, 0], MAP[-1, -1], MAP[0, 2]], atol=1e-12)


def test_udim_tile_and_channels():
    rgb = np.stack([MAP, -MAP, 2 * MAP], -1)
    got = sample_map(rgb, np.array([centre(3, 1, tile=2)]), tile=2)
    assert got.shape == (1, 3)
    np.testing.assert_allclose(got[0], rgb[3, 1], atol=1e-12)


def test_torch_matches_numpy_and_reaches_the_map():
    rng = np.random.default_rng(3)
    uv = rng.uniform(-0.1, 1.1, (2, 6, 7, 2))
    maps = torch.tensor(np.stack([MAP, MAP[::-1]])[:, None], requires_grad=True)
    got = sample_maps(maps, torch.from_numpy(uv))
    assert got.shape == (2, 1, 6, 7)
    for b in range(2):
        expected = sample_map(maps[b, 0].detach().numpy(), uv[b].reshape(-1, 2)).reshape(6, 7)
        np.testing.assert_allclose(got[b, 0].detach().numpy(), expected, atol=1e-12)
    # the bilinear weights of one sample sum to one, so d(sum of samples)/d(map) sums to the sample count
    got.sum().backward()
    assert torch.isclose(maps.grad.sum(), torch.tensor(2 * 6 * 7, dtype=maps.dtype))

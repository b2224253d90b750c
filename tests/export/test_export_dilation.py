"""The one island dilation (fitter.common.filters) that every exported map and the renderer's UV maps use."""
from __future__ import annotations

import numpy as np
import torch

from fitter.common.filters import dilate_islands, dilate_map
from fitter.render import dilate_uv


def test_each_ring_takes_the_mean_of_its_covered_neighbours():
    img = np.zeros((5, 6))
    mask = np.zeros((5, 6), bool)
    img[2, 2], img[2, 3] = 1.0, 4.0
    mask[2, 2] = mask[2, 3] = True
    img[0, 0] = np.nan  # outside the islands: never read
    one = dilate_map(img, mask, 1, fill=-1.0)
    assert one[1, 1] == 1.0 and one[1, 2] == 2.5 and one[1, 4] == 4.0 and one[3, 3] == 2.5
    assert one[0, 0] == -1.0 and one[2, 0] == -1.0  # beyond one ring: the fill
    two = dilate_map(img, mask, 2, fill=-1.0)
    assert two[2, 0] == 1.0 and two[0, 0] == 1.0 and np.isfinite(two).all()
    assert np.array_equal(two[1:4, 1:5], one[1:4, 1:5])  # earlier rings are kept
    rgb = dilate_map(np.stack([img, 2 * img], -1), mask, 1, fill=(7.0, 8.0))
    assert np.array_equal(rgb[..., 1][mask], 2 * img[mask]) and rgb[0, 0].tolist() == [7.0, 8.0]


def test_batched_maps_and_the_renderers_name():
    maps = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    mask = torch.rand(9, 9) > 0.8
    grown, cover = dilate_islands(maps, mask, 3)
    assert cover.dtype == torch.bool and cover.sum() > mask.sum() and torch.equal(grown[:, :, mask], maps[:, :, mask])
    assert torch.all(grown[:, :, ~cover] == 0)
    for f in range(2):
        for c in range(3):
            want = dilate_map(maps[f, c].numpy(), mask.numpy(), 3, fill=0.0)
            assert np.array_equal(grown[f, c].numpy(), want)
    assert dilate_uv is dilate_islands

"""Helpers for the critic's tests: small clean photos of known geometry (fast to render, unlike the wild pool)."""
from __future__ import annotations

from fitter.critic.pool import PoolPhoto, photo_of_case
from fitter.synth.cases import render_case, sample_case

TEST_SEED = 1009  # one of the critic's reserved seeds (fitter.critic.train.RESERVED_SEEDS)


def clean_photos(model, count: int, size: int = 160, seed: int = TEST_SEED) -> list[PoolPhoto]:
    """``count`` clean synthetic photos of ``size`` pixels with their truths."""
    out = []
    for index in range(count):
        case = sample_case(model, index, seed, size, detail=False)
        out.append(photo_of_case(model, case, render_case(model, case).image, seed))
    return out

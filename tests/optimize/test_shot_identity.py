"""Comparing the shots of a cut clip (fitter.optimize.shot_identity): which frames each shot reads its identity
from, which stages it uses, and the distance between identities."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.optimize.presets import load_preset
from fitter.optimize.shot_identity import identity_distances_mm, landmark_stages, shot_instants


class TestShotInstants:
    def test_evenly_spaced_detected_instants_per_segment(self):
        segments = np.array([0] * 10 + [1] * 4 + [2] * 2)
        detected = np.ones(16, bool)
        detected[11] = False
        picks = shot_instants(segments, detected, least=3, most=4)
        assert picks == {0: [0, 3, 6, 9], 1: [10, 12, 13]}  # segment 2 has too few frames

    def test_short_segments_take_every_frame(self):
        assert shot_instants(np.zeros(3, int), np.ones(3, bool), 1, 6) == {0: [0, 1, 2]}


class TestLandmarkStages:
    @pytest.mark.parametrize("preset", ["fast", "default"])
    def test_only_stages_without_images(self, preset):
        names = [s["name"] for s in landmark_stages(load_preset(preset)["stages"])]
        assert names == ["rigid", "landmarks"]


class TestIdentityDistances:
    def test_first_is_zero_and_others_grow_with_the_difference(self, ict):
        base = torch.zeros(ict.num_identity)
        near, far = base.clone(), base.clone()
        near[0], far[0] = 0.2, 2.0
        d = identity_distances_mm(ict, [base, near, far])
        assert d[0] == pytest.approx(0.0, abs=1e-4)
        assert 0.0 < d[1] < d[2]

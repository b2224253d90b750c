"""The wild benchmark's part agreement scored by the truth (`true_part_ious`, bench.json's `part_iou_truth`): the
real photos' part IoU is measured against landmark-drawn masks; on renders the same figure can be held against the
true geometry's parts."""
from __future__ import annotations

import math

import pytest
import torch

from fitter.bench.synthetic import PreparedCase, aggregate, mean_part_iou, true_landmarks, true_part_ious
from fitter.crop import FitCrop
from fitter.observe.segmentation import PART_NAMES
from fitter.optimize.quality import rendered_part_labels
from fitter.synth.cases import render_case, sample_case
from fitter.synth.scenes import case_K


@pytest.fixture(scope="module")
def case_and_crop(ict):
    case = sample_case(ict, 0, 0, 128, detail=False)
    prepared = PreparedCase(case, render_case(ict, case), None, 0.0)
    crop = FitCrop.around(true_landmarks(ict, prepared), 128)
    cam = torch.as_tensor(prepared.rendered.camera_vertices, dtype=torch.float32)[None]
    return prepared, crop, cam, case_K(case).float()


class TestTruePartIous:
    def test_the_truth_agrees_with_itself(self, ict, case_and_crop):
        prepared, crop, cam, K = case_and_crop
        same = true_part_ious(ict, prepared, cam, K, crop)
        assert {"nose", "upper_lip", "lower_lip", "skin"} <= set(same)
        assert all(v == 1.0 for v in same.values())

    def test_a_face_moved_aside_agrees_less(self, ict, case_and_crop):
        """5 mm to the side (a few crop pixels): every part overlaps its true place less, the thin ones most."""
        prepared, crop, cam, K = case_and_crop
        same = true_part_ious(ict, prepared, cam, K, crop)
        moved = true_part_ious(ict, prepared, cam + torch.tensor([0.5, 0.0, 0.0]), K, crop)
        assert moved.keys() == same.keys()
        assert all(moved[p] < 1.0 for p in moved)
        assert moved["upper_lip"] < moved["skin"] < 0.99
        # intersection over union, not over the true part alone (recall)
        nose = PART_NAMES.index("nose") + 1
        fitted = rendered_part_labels(ict, cam + torch.tensor([0.5, 0.0, 0.0]), K, crop) == nose
        true = rendered_part_labels(ict, cam, K, crop) == nose
        assert moved["nose"] == pytest.approx((fitted & true).sum() / (fitted | true).sum())

    def test_a_wrong_camera_is_not_the_truth(self, ict, case_and_crop):
        """The fit's own intrinsics place its parts: a focal length 20 % long shows the same vertices larger."""
        prepared, crop, cam, K = case_and_crop
        longer = K.clone()
        longer[:, 0, 0] *= 1.2
        longer[:, 1, 1] *= 1.2
        assert mean_part_iou(true_part_ious(ict, prepared, cam, longer, crop)) < 0.9


class TestAggregate:
    def test_medians_of_the_mean_part_iou_skip_faces_without_one(self):
        def row(masks, truth):
            return {"detected": True, "expression_extreme": False, "focal_px": 1000.0, "focal_true_px": 1000.0,
                    "focal_log_std": None, "part_iou": masks, "part_iou_truth": truth}

        rows = [row({"nose": 0.5, "skin": 0.7}, {"nose": 0.9, "skin": 1.0}), row(None, {"nose": 0.3}),
                row({"nose": 0.8}, {}), {"detected": False}]
        out = aggregate(rows)
        assert math.isclose(out["part_iou_median"], (0.6 + 0.8) / 2)
        assert math.isclose(out["part_iou_truth_median"], (0.95 + 0.3) / 2)
        assert aggregate([row(None, {})])["part_iou_truth_median"] is None

"""The no-harm guard's rule (fitter.optimize.quality.Guard): which stage endings it rejects with the preset's
thresholds."""
from __future__ import annotations

import pytest

from fitter.optimize.presets import load_preset
from fitter.optimize.quality import Guard

BEFORE = {"iou_mean": 0.70, "nme_mean": 0.020}


def after(iou: float | None, nme: float) -> dict:
    return {"iou_mean": iou, "nme_mean": nme}


@pytest.fixture()
def guard() -> Guard:
    return Guard(enabled=True, max_iou_drop=0.05, max_nme_rise=0.5)


class TestGuard:
    def test_small_changes_pass(self, guard):
        assert guard.check({"name": "s"}, BEFORE, after(0.66, 0.029)) is None

    def test_iou_fall_is_rejected(self, guard):
        assert "part IoU fell from 0.700 to 0.640" == guard.check({"name": "s"}, BEFORE, after(0.64, 0.020))

    def test_nme_rise_is_rejected(self, guard):
        assert "landmark NME rose" in guard.check({"name": "s"}, BEFORE, after(0.70, 0.031))

    def test_without_masks_only_nme_counts(self, guard):
        assert guard.check({"name": "s"}, {"iou_mean": None, "nme_mean": 0.02}, after(None, 0.025)) is None

    def test_unguarded_or_disabled_stage_passes(self, guard):
        assert guard.check({"name": "s", "guarded": False}, BEFORE, after(0.1, 1.0)) is None
        off = Guard(enabled=False)
        assert off.check({"name": "s"}, BEFORE, after(0.1, 1.0)) is None

    def test_preset_thresholds(self):
        preset = load_preset("default")
        g = Guard.from_preset(preset)
        assert (g.max_iou_drop, g.max_nme_rise) == (preset["guard"]["max_iou_drop"], preset["guard"]["max_nme_rise"])

"""The no-harm guard's rule (fitter.optimize.quality.Guard): which stage endings it rejects with the preset's
thresholds."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.optimize.presets import load_preset
from fitter.observe.segmentation import PartMasks
from fitter.optimize.quality import Guard, Verdict

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
        verdict = guard.check({"name": "s"}, BEFORE, after(0.64, 0.020))
        assert verdict == Verdict("part IoU fell from 0.700 to 0.640", revert=True)

    def test_iou_fall_on_masks_drawn_from_the_landmarks_is_flagged_not_reverted(self, guard):
        flagging = Guard(enabled=True, max_iou_drop=0.05, max_nme_rise=0.5, weak_masks="flag")
        assert flagging.check({"name": "s"}, BEFORE, after(0.64, 0.020), weak=True) == \
            Verdict("part IoU fell from 0.700 to 0.640", revert=False)
        assert flagging.check({"name": "s"}, BEFORE, after(0.64, 0.020), weak=False).revert  # the parser's masks
        assert guard.check({"name": "s"}, BEFORE, after(0.64, 0.020), weak=True).revert  # weak_masks = "revert"

    def test_nme_rise_reverts_on_masks_drawn_from_the_landmarks(self):
        flagging = Guard(enabled=True, max_iou_drop=0.05, max_nme_rise=0.5, weak_masks="flag")
        verdict = flagging.check({"name": "s"}, BEFORE, after(0.60, 0.031), weak=True)
        assert verdict.revert and "landmark NME rose" in verdict.reason

    def test_nme_rise_is_rejected(self, guard):
        assert "landmark NME rose" in guard.check({"name": "s"}, BEFORE, after(0.70, 0.031)).reason

    def test_without_masks_only_nme_counts(self, guard):
        assert guard.check({"name": "s"}, {"iou_mean": None, "nme_mean": 0.02}, after(None, 0.025)) is None

    def test_unguarded_or_disabled_stage_passes(self, guard):
        assert guard.check({"name": "s", "guarded": False}, BEFORE, after(0.1, 1.0)) is None
        off = Guard(enabled=False)
        assert off.check({"name": "s"}, BEFORE, after(0.1, 1.0)) is None

    def test_falls_add_up_against_the_best_kept_stage(self, guard):
        # 0.70 -> 0.67 in an earlier stage (kept), now 0.67 -> 0.64 with the NME better: 0.06 below the best
        before = {"iou_mean": 0.67, "nme_mean": 0.020}
        assert guard.check({"name": "s"}, before, after(0.64, 0.019)) is None  # against the stage's start
        verdict = guard.check({"name": "s"}, before, after(0.64, 0.019), 0.70)
        assert verdict.reason == "part IoU fell from 0.700 to 0.640"

    def test_non_finite_nme_is_rejected(self, guard):
        assert guard.check({"name": "s"}, BEFORE, after(0.70, float("nan"))) == Verdict("landmark NME is not finite")
        unguarded = {"name": "s", "guarded": False}  # a stage the guard may not reject still may not end non-finite
        assert guard.check(unguarded, BEFORE, after(0.70, float("nan")), weak=True).revert

    def test_preset_thresholds(self):
        preset = load_preset("default")
        g = Guard.from_preset(preset)
        cfg = preset["guard"]
        assert (g.max_iou_drop, g.max_nme_rise, g.weak_masks) == (cfg["max_iou_drop"], cfg["max_nme_rise"], "flag")


def scripted_fit(ict, monkeypatch, ious: list[float], nmes: list[float], stages: list[dict] | None = None,
                 masks: PartMasks | None = None):
    """fit_face with scripted stages and measures (no optimisation): ``ious``/``nmes`` are the start's and then each
    stage's; every stage moves the identity by 1; ``masks`` are handed to the fit (their weak flag is what counts).
    Returns the fit and the identity the first stage started from."""
    from fitter.optimize import fit as driver
    from fitter.optimize.schedule import StageLog
    from synthetic_faces import ground_truth, observe

    script = iter(zip(ious, nmes))
    kept = {}

    def scripted_measure(model, state, evidence, landmarks, crops, terms):
        if not kept.get("restoring"):
            kept["iou"], kept["nme"] = next(script)
        kept["restoring"] = False
        return {"nme": [kept["nme"]], "iou": [kept["iou"]], "nme_mean": kept["nme"], "iou_mean": kept["iou"]}

    def scripted_stage(model, state, stage, terms, optimizer):
        kept.setdefault("start", state.identity.detach().clone())
        state.identity = state.identity + 1.0  # every stage moves the face
        return StageLog(stage["name"])

    real_restore = driver.restore_geometry

    def restore(state, snapshot):
        real_restore(state, snapshot)
        kept["restoring"] = True  # the measure after a restore repeats the kept state's

    monkeypatch.setattr(driver, "measure", scripted_measure)
    monkeypatch.setattr(driver, "run_stage", scripted_stage)
    monkeypatch.setattr(driver, "restore_geometry", restore)
    monkeypatch.setattr(driver, "focal_uncertainty", lambda *a: (float("nan"), ""))
    preset = load_preset("fast")
    stages = stages or [{"name": f"s{k}", "free": ["identity"], "iterations": 1, "weights": {"landmarks": 1.0}}
                        for k in range(3)]
    preset = dict(preset, stages=stages)
    obs = observe(ict, ground_truth(ict), noise_px=0.5)
    return driver.fit_face(ict, obs, (512, 512), preset, masks=masks), kept["start"]


class TestDriverKeepsTheBestEvidence:
    """fit_subject measures every stage and hands the guard the best IoU kept so far; a rejected stage's
    geometry is put back and the face is flagged. Stages and measures are scripted (no optimisation)."""

    def test_small_falls_that_add_up_are_rejected(self, ict, monkeypatch):
        # init 0.70; s0 -> 0.72 (kept); s1 -> 0.69 (0.03 below the best, kept); s2 -> 0.66 (0.06 below: rejected)
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.72, 0.69, 0.66], [0.02, 0.02, 0.019, 0.018])
        assert fit.suspect == {"stage": "s2", "reason": "part IoU fell from 0.720 to 0.660",
                               "action": "reverted"}
        assert torch.allclose(fit.state.identity, start + 2.0)  # s2's move was put back

    def test_falls_within_the_bound_are_kept(self, ict, monkeypatch):
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.72, 0.69, 0.68], [0.02, 0.02, 0.022, 0.021])
        assert fit.suspect is None
        assert torch.allclose(fit.state.identity, start + 3.0)


def blank_masks(weak: bool) -> PartMasks:
    labels = np.zeros((512, 512), np.uint8)
    return PartMasks(labels=labels, occlusion=labels > 0, region=(0, 0, 512, 512),
                     source="landmarks" if weak else "facer:farl/lapa/448", weak=weak)


class TestMasksDrawnFromTheLandmarks:
    """With masks drawn from the landmarks (the offline fallback) an IoU fall flags the face and keeps the stage
    (shipped presets: weak_masks = "flag"); the parser's masks still revert it; an NME rise reverts either way."""

    def test_iou_fall_is_flagged_and_the_stage_kept(self, ict, monkeypatch):
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.72, 0.69, 0.66], [0.02] * 4, masks=blank_masks(True))
        assert fit.suspect == {"stage": "s2", "reason": "part IoU fell from 0.720 to 0.660", "action": "kept"}
        assert torch.allclose(fit.state.identity, start + 3.0)
        assert fit.quality["s2"]["flagged"] == "part IoU fell from 0.720 to 0.660"

    def test_one_warning_for_falls_in_several_stages(self, ict, monkeypatch):
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.72, 0.66, 0.65], [0.02] * 4, masks=blank_masks(True))
        assert fit.suspect["stage"] == "s1" and "flagged" in fit.quality["s2"]
        assert sum("drawn from the landmarks" in w for w in fit.warnings) == 1

    def test_the_parsers_masks_still_revert(self, ict, monkeypatch):
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.72, 0.69, 0.66], [0.02] * 4, masks=blank_masks(False))
        assert fit.suspect["action"] == "reverted"
        assert torch.allclose(fit.state.identity, start + 2.0)

    def test_nme_rise_reverts(self, ict, monkeypatch):
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.72, 0.69, 0.60], [0.02, 0.02, 0.02, 0.05],
                                  masks=blank_masks(True))
        assert fit.suspect["action"] == "reverted" and "landmark NME rose" in fit.suspect["reason"]
        assert torch.allclose(fit.state.identity, start + 2.0)


class TestTheLandmarkFitIsWhereTheEvidenceStarts:
    """The shipped presets' rigid and landmark stages are not judged against the closed-form start (a guess made
    to be refined: on wild face 18 of seed 0 the guard put it back, the shape error 4.5 -> 8.0 mm); the stages
    after them are judged against the landmark fit, not against the start."""

    @pytest.fixture(params=["fast", "default"])
    def stages(self, request) -> list[dict]:
        stages = load_preset(request.param)["stages"]
        assert [s["name"] for s in stages[:3]] == ["rigid", "landmarks", "prdl"]
        return stages[:3]

    def test_the_landmark_stages_are_kept_when_the_iou_falls_from_the_start(self, ict, monkeypatch, stages):
        # start 0.70; rigid 0.62 and landmarks 0.60 (0.08 and 0.10 below the start); prdl 0.58 (0.02 below them)
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.62, 0.60, 0.58], [0.02] * 4, stages)
        assert fit.suspect is None
        assert torch.allclose(fit.state.identity, start + 3.0)

    def test_later_stages_are_judged_against_the_landmark_fit(self, ict, monkeypatch, stages):
        fit, start = scripted_fit(ict, monkeypatch, [0.70, 0.62, 0.60, 0.54], [0.02] * 4, stages)
        assert fit.suspect == {"stage": "prdl", "reason": "part IoU fell from 0.600 to 0.540",
                               "action": "reverted"}
        assert torch.allclose(fit.state.identity, start + 2.0)

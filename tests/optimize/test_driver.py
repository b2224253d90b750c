"""The fit driver (fitter.optimize.fit.fit_subject) on a subject of two frames: one synthetic face at two head
poses. One identity is fitted for both, each frame keeps its own pose and landmark error, and a stage that
weighs a term the evidence cannot feed runs without it and says so."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.evidence import Evidence, FrameEvidence
from fitter.optimize.fit import fit_subject
from fitter.optimize.presets import load_preset, merge
from synthetic_faces import ground_truth, observe

SIZE = (512, 512)
YAWS = (-0.3, 0.35)


def two_pose_evidence(model) -> tuple[Evidence, list]:
    truths = [ground_truth(model, yaw=yaw, size=SIZE) for yaw in YAWS]  # same seed: the same face
    faces = [observe(model, gt, noise_px=0.3, seed=k) for k, gt in enumerate(truths)]
    return Evidence([FrameEvidence(face, SIZE) for face in faces]), truths


def short_preset() -> dict:
    preset = merge(load_preset("fast"), {"landmarks": {"sigma": 0.003}})
    preset["stages"] = [
        {"name": "rigid", "free": ["rotation", "translation", "log_focal"], "iterations": 15, "rounds": 1,
         "weights": {"landmarks": 1.0, "focal_prior": 1.0}},
        {"name": "shape", "free": ["rotation", "translation", "identity", "expression"], "iterations": 25,
         "rounds": 1, "weights": {"landmarks": 1.0, "identity_prior": 1.0, "expression_prior": 1.0,
                                  "photometric": 1.0}},
    ]
    return preset


@pytest.fixture(scope="module")
def fitted(ict):
    evidence, truths = two_pose_evidence(ict)
    return fit_subject(ict, evidence, short_preset()), truths


class TestTwoFrames:
    """Identity is shared, pose and landmark error are per frame, in frame order."""

    def test_shared_identity_and_per_frame_pose(self, ict, fitted):
        fit, truths = fitted
        state = fit.state
        assert state.identity.shape == (ict.num_identity,) and state.num_frames == 2
        assert state.expression.shape == (2, ict.num_expression) and state.rotation.shape == (2, 3)
        for f, gt in enumerate(truths):
            assert float(state.rotation[f, 1]) == pytest.approx(float(gt.rotation[0, 1]), abs=0.05)

    def test_per_frame_rmse(self, fitted):
        fit, _ = fitted
        assert len(fit.rmse_px_frames) == 2 and fit.rmse_px == fit.rmse_px_frames[0]
        assert all(np.isfinite(v) and v < 2.0 for v in fit.rmse_px_frames), fit.rmse_px_frames

    def test_stage_logs(self, fitted):
        fit, _ = fitted
        assert [log.name for log in fit.stages] == ["rigid", "shape"]
        assert fit.stages[-1].energies["landmarks"] < fit.stages[0].energies["landmarks"]
        assert not any(t.requires_grad for t in fit.state.tensors().values())
        assert isinstance(fit.state.identity, torch.Tensor)


class TestMissingPhoto:
    """A stage weighing the photometric term without photos runs without it; the fit says so."""

    def test_warning_and_skipped_term(self, fitted):
        fit, _ = fitted
        assert any("'photometric'" in w and "photo" in w for w in fit.warnings), fit.warnings
        assert fit.stages[-1].skipped_terms == ["photometric"] and fit.stages[0].skipped_terms == []

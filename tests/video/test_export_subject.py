"""Per-subject outputs (fitter.export.subject): params.npz arrays and shapes (NaN where a frame has no
detection), the neutral mesh, anim.usdc's stage and time codes, the posed OBJ sequence, overlay.mp4, report.json;
a multi-view subject's per-image arrays carry a view axis."""
from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from fitter.export.subject import acceleration_px, export_subject, overlay_image
from fitter.model.obj_reader import read_obj
from fitter.optimize.subject import SubjectFit, measure_subject
from sequences import moving_face, rig_evidence, ring_rig, sequence_evidence, tiny_preset

pxr = pytest.importorskip("pxr", reason="usd-core is not installed (pip install facefit[usd])")
from pxr import Usd, UsdGeom, UsdSkel  # noqa: E402

FPS = 25.0
EVERY = 3
F = np.diag([1.0, -1.0, -1.0])


def subject_fit(model, state, evidence, preset) -> SubjectFit:
    """The truth as a fit (its measurements done as the fitter does them)."""
    detected = np.array([f.detected for f in evidence.frames])
    instants = state.num_instants
    fit = SubjectFit(state, evidence, detected, np.ones(instants, bool) if state.multiview else detected.copy(), [0],
                     np.zeros(instants, np.int64), None if state.multiview else np.arange(instants) * EVERY / FPS,
                     not state.multiview, [1100.0] * state.log_focal.shape[0])
    measure_subject(model, fit, preset)
    return fit


@pytest.fixture(scope="module")
def clip_outputs(ict_random_embedding, tmp_path_factory):
    model = ict_random_embedding
    state = moving_face(model, 3, FPS / EVERY)
    evidence = sequence_evidence(model, state, FPS / EVERY, missing=(1,))
    fit = subject_fit(model, state, evidence, tiny_preset())
    folder = tmp_path_factory.mktemp("subject")
    frames = [np.full((512, 512, 3), 40 * k, np.uint8) for k in range(3)]
    report = export_subject(model, fit, folder, "clip.mp4", tiny_preset(), fps=FPS, frame_index=[0, 3, 6],
                            view_names=["camera"], images=lambda: ([f] for f in frames), obj_sequence=True)
    return model, state, fit, folder, report


def test_params(clip_outputs):
    model, state, _, folder, _ = clip_outputs
    p = np.load(folder / "params.npz")
    T, E, N = 3, model.num_expression, 478
    assert p["identity"].shape == (model.num_identity,) and p["expression"].shape == (T, E)
    assert p["R"].shape == (T, 3, 3) and p["t"].shape == (T, 3) and p["rotation"].shape == (T, 3)
    assert p["K"].shape == (1, 3, 3) and p["frame_index"].tolist() == [0, 3, 6]
    np.testing.assert_allclose(p["time_s"], [0.0, 0.12, 0.24], atol=1e-9)
    assert p["detected"].tolist() == [True, False, True]
    assert p["landmarks_observed"].shape == p["landmarks_fitted"].shape == (T, N, 2)
    assert np.isnan(p["landmarks_observed"][1]).all() and np.isfinite(p["landmarks_observed"][[0, 2]]).all()
    assert np.isfinite(p["landmarks_fitted"]).all()
    assert np.isnan(p["rmse_px"][1]) and (p["rmse_px"][[0, 2]] < 2.0).all()  # the truth fits its landmarks
    # R, t place the model in the camera as the state does
    x = model.mean[:5].numpy()
    cam = state.to_camera(torch.as_tensor(x)[None].expand(3, -1, -1)).numpy()
    np.testing.assert_allclose(x @ p["R"][2].T + p["t"][2], cam[2], atol=1e-3)


def test_mesh_usd_and_obj_sequence(clip_outputs):
    model, state, fit, folder, report = clip_outputs
    neutral = read_obj(folder / "mesh.obj").vertices
    np.testing.assert_allclose(neutral, fit.vertices(model).numpy(), atol=1e-5)
    stage = Usd.Stage.Open(str(folder / "anim.usdc"))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 0.01
    assert stage.GetTimeCodesPerSecond() == FPS and stage.GetStartTimeCode() == 0 and stage.GetEndTimeCode() == 6
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/face/Anim"))
    weights = np.array(anim.GetBlendShapeWeightsAttr().Get(Usd.TimeCode(3.0)))
    np.testing.assert_allclose(weights, state.expression[1].numpy(), atol=1e-6)
    # the posed OBJ of a frame is the model in the stage frame: F (R F x + t)
    with torch.no_grad():
        posed = state.to_camera(model.vertices(state.identity, state.expression)).numpy() @ F.T
    obj = read_obj(folder / "frames" / "frame_000006.obj").vertices
    np.testing.assert_allclose(obj, posed[2], atol=1e-4)
    assert "frames/frame_000003.obj" in report["outputs"] and (folder / "frames" / "frames.mtl").exists()


def test_overlay_and_report(clip_outputs):
    _, _, _, folder, _ = clip_outputs
    cap = cv2.VideoCapture(str(folder / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and abs(cap.get(cv2.CAP_PROP_FPS) - FPS / EVERY) < 0.01
    cap.release()
    saved = json.loads((folder / "report.json").read_text())
    assert saved["sequence"]["frames"] == 3 and saved["sequence"]["detected_images"] == 2
    rows = saved["frames"]
    assert [r["frame_index"] for r in rows] == [0, 3, 6] and rows[1]["rmse_px"] is None and rows[1]["detected"] is False
    assert set(saved["sequence"]["landmark_acceleration_px_s2"]) == {"observed", "fitted"}
    for name in ("mesh.obj", "params.npz", "anim.usdc", "overlay.mp4", "report.json"):
        assert name in saved["outputs"] and (folder / name).exists()


def test_an_undetected_frame_says_so_on_the_overlay(clip_outputs):
    model, _, fit, _, _ = clip_outputs
    rgb = np.full((512, 512, 3), 40, np.uint8)

    def red_in_top_band(image: np.ndarray) -> int:
        band = image[:40, :300].astype(int)
        return int(((band[..., 0] > 200) & (band[..., 1] < 120)).sum())

    assert red_in_top_band(overlay_image(model, fit, 1, rgb)) > 50  # frame 1 has no detection
    assert red_in_top_band(overlay_image(model, fit, 0, rgb)) == 0
    # a frame detected but without a usable start (SubjectFitter marks it undetected, its evidence keeps the face)
    unused = dataclasses.replace(fit, detected=np.array([False, False, True]))
    assert unused.evidence.frames[0].detected
    assert red_in_top_band(overlay_image(model, unused, 0, rgb)) > 50


def test_multiview_arrays_have_a_view_axis(ict_random_embedding, tmp_path):
    model = ict_random_embedding
    rig = ring_rig(2)
    identity = torch.randn(model.num_identity, generator=torch.Generator().manual_seed(3))
    heads = [(np.array([0.0, 0.2, 0.0]), np.zeros(3)), (np.array([0.0, -0.2, 0.0]), np.zeros(3))]
    evidence = rig_evidence(model, rig, heads, identity)
    from fitter.optimize.subject import SubjectFitter

    fitter = SubjectFitter(model, evidence, tiny_preset(), rig, list(rig.cameras))
    focals = fitter.focal_guesses()
    state = fitter.initial_state(fitter.image_starts(focals), focals)
    fit = subject_fit(model, state, fitter.evidence, tiny_preset())
    export_subject(model, fit, tmp_path, "capture", tiny_preset(), fps=None, view_names=list(rig.cameras))
    p = np.load(tmp_path / "params.npz")
    assert p["landmarks_observed"].shape == (2, 2, 478, 2) and p["rmse_px"].shape == (2, 2)
    assert p["K"].shape == (2, 3, 3) and p["view_R"].shape == (2, 3, 3) and p["view_t"].shape == (2, 3)
    np.testing.assert_allclose(p["view_t"], np.stack([c.t for c in rig.cameras.values()]), atol=1e-4)
    assert p["view_names"].tolist() == list(rig.cameras) and p["detected"].shape == (2, 2)


def test_landmark_acceleration_skips_triples_across_a_cut():
    times = np.arange(6) / 10.0
    track = np.zeros((6, 2, 2))
    track[:, :, 0] = 5.0 * times[:, None] ** 2 / 2  # constant acceleration 5 px/s^2 on x ...
    track[3:, :, 0] += 100.0  # ... and a jump at a cut before instant 3
    segments = np.array([0, 0, 0, 1, 1, 1])
    assert acceleration_px(track, times, segments) == pytest.approx(5.0)
    assert acceleration_px(track, times) > 1000.0  # the jump read as motion

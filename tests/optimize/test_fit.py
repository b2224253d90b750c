import numpy as np

from fitter.optimize.fit import fit_face
from fitter.metrics import procrustes_error
from fitter.model.contour import contour_candidates
from fitter.optimize.presets import load_preset, merge
from fitter.scene import Scene
from synthetic_faces import ground_truth, observe


def test_fit_recovers_landmarks_and_shape(ict_random_embedding):
    model = ict_random_embedding
    gt = ground_truth(model, yaw=0.35)
    obs = observe(model, gt, noise_px=0.5)
    # landmark noise here is 0.5 px on a ~250 px face (0.002 of its size), far below the preset's 0.02 for
    # MediaPipe: tell the fitter, so that the data, not the prior, decides
    preset = merge(load_preset("fast"), {"landmarks": {"sigma": 0.003}})
    fit = fit_face(model, obs, (512, 512), preset)
    assert fit.rmse_px < 1.2  # noise is 0.5 px per axis (0.7 px RMSE at the optimum)
    face = model.topology.region("face")
    est = fit.vertices(model).numpy()[face]
    true = Scene(model, gt).vertices()[0].numpy()[face]
    mean = model.mean.numpy()[face]
    err, err_mean = procrustes_error(est, true) * 10, procrustes_error(mean, true) * 10
    assert err < 0.6 * err_mean, (err, err_mean)
    assert fit.stages[-1].energies["landmarks"] < fit.stages[0].energies["landmarks"] * 1.01


def test_sliding_contour_candidates(ict):
    cand = contour_candidates(ict, "ibug68")
    assert set(cand) == {0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16}  # 6, 7, 9, 10 are their own substitutes
    for k, c in cand.items():
        assert c[0] == ict.topology.landmarks68[k] and len(c) >= 2
    assert contour_candidates(ict, "mediapipe478") == {}


def test_fit_ibug68_on_turned_face_uses_contour(ict):
    gt = ground_truth(ict, yaw=0.9)
    # a jawline observed on the silhouette: project the substitute vertices for the far side
    obs = observe(ict, gt, landmark_format="ibug68", noise_px=0.3)
    preset = load_preset("fast")
    fit = fit_face(ict, obs, (512, 512), preset)
    assert np.isfinite(fit.rmse_px) and fit.rmse_px < 3.0

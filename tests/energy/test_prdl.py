"""PRDL: statistics, sampling, targets from masks, and that the energy pulls a shifted face back."""
import numpy as np
import pytest
import torch

from fitter.bench.masks import corrupt_masks, oracle_masks
from fitter.synth.cases import render_case, sample_case
from fitter.bench.synthetic import PreparedCase, true_landmarks
from fitter.crop import FitCrop
from fitter.energy.prdl import PRDLTerm, anchor_grid, build_targets, distance_stats, farthest_point_sampling
from fitter.observe.segmentation import PART_NAMES
from fitter.optimize.presets import load_preset
from fitter.optimize.quality import part_ious
from fitter.optimize.schedule import run_stage
from fitter.scene import Scene
from fitter.state import FitState


def test_distance_stats_match_brute_force():
    anchors, points = torch.rand(50, 2) * 10, torch.rand(30, 2) * 10
    d = np.linalg.norm(anchors.numpy()[:, None] - points.numpy()[None], axis=-1)
    s = distance_stats(anchors, points, chunk=7).numpy()
    np.testing.assert_allclose(s, np.stack([d.min(1), d.max(1), d.mean(1)], 1), rtol=1e-4, atol=1e-5)
    soft = distance_stats(anchors, points, soft=0.05).numpy()  # soft-min/max approach the hard ones
    np.testing.assert_allclose(soft[:, :2], s[:, :2], atol=0.2)


def test_farthest_point_sampling_is_greedy_and_spread():
    pts = np.random.default_rng(1).random((150, 2))  # below 4k points: exact greedy FPS, no thinning
    idx = farthest_point_sampling(pts, 40)
    chosen = [idx[0]]
    dist = np.linalg.norm(pts - pts[idx[0]], axis=1)
    for _ in range(39):
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[j], axis=1))
    assert list(idx) == chosen
    # with thinning (4000 points, 40 samples): the samples still cover the square evenly
    many = np.random.default_rng(2).random((4000, 2))
    idx = farthest_point_sampling(many, 40)
    assert len(set(idx.tolist())) == 40
    assert np.linalg.norm(many[:, None] - many[idx][None], axis=-1).min(1).max() < 0.2
    assert len(farthest_point_sampling(pts, 1000)) == 150


def test_anchor_grid_covers_the_crop():
    a = anchor_grid(64, 4)
    assert a.shape == (16, 2) and a.min() == 8.0 and a.max() == 56.0


@pytest.fixture(scope="module")
def scene_case(ict):
    case = sample_case(ict, 7, 0, size=384, detail=False)  # near frontal, mild expression
    rendered = render_case(ict, case)
    prepared = PreparedCase(case, rendered, None, 0.0)
    masks = oracle_masks(ict, rendered, true_landmarks(ict, prepared))
    gt = FitState.single(ict.num_identity, ict.num_expression, case.image_size, case.focal)
    gt.identity = torch.as_tensor(case.identity)
    gt.expression = torch.as_tensor(case.expression)[None]
    gt.rotation = torch.as_tensor(case.rotation, dtype=torch.float32)[None]
    gt.translation = torch.as_tensor(case.translation, dtype=torch.float32)[None]
    crop = FitCrop.around(true_landmarks(ict, prepared), 128)
    return case, masks, gt, crop


def test_oracle_masks_agree_with_the_true_render(ict, scene_case):
    case, masks, gt, crop = scene_case
    ious = part_ious(ict, Scene(ict, gt), masks, crop)
    assert set(ious) == set(PART_NAMES)
    assert min(ious.values()) > 0.6 and ious["skin"] > 0.9
    bad = corrupt_masks(masks, seed=3)
    assert np.mean(list(part_ious(ict, Scene(ict, gt), bad, crop).values())) < np.mean(list(ious.values()))


def test_prdl_is_lowest_at_the_truth_and_pulls_a_shifted_face_back(ict, scene_case):
    case, masks, gt, crop = scene_case
    targets = build_targets(masks, crop, grid=24, skin_points=800, part_points=400)
    assert bool(targets.present.all())
    term = PRDLTerm(ict, targets, max_points=300)
    at_truth = float(term(Scene(ict, gt)))
    shifted = gt.detached()
    shifted.translation = shifted.translation + torch.tensor([[0.8, -0.5, 0.0]])
    shifted.rotation = shifted.rotation + torch.tensor([[0.0, 0.08, 0.0]])
    term.index = None  # visible sets of the new pose
    before = float(term(Scene(ict, shifted)))
    assert before > 3 * at_truth
    stage = {"name": "prdl", "free": ["rotation", "translation"], "iterations": 30, "rounds": 2,
             "weights": {"prdl": 1.0}}
    def image_error(state):  # mean distance (px) of the projected face vertices from their true positions
        face = torch.as_tensor(ict.topology.region("narrow_face"))
        est = Scene(ict, state).project(Scene(ict, state).vertices()[:, face])[0]
        true = Scene(ict, gt).project(Scene(ict, gt).vertices()[:, face])[0]
        return float((est - true).norm(dim=-1).mean())

    start = image_error(shifted)
    run_stage(ict, shifted, stage, {"prdl": term}, load_preset("fast")["optimizer"])
    assert float(term(Scene(ict, shifted))) < 0.5 * before
    assert image_error(shifted) < 0.35 * start, (image_error(shifted), start)


def test_a_stage_sets_its_own_part_weights(ict, scene_case):
    """``prdl_part_weights`` in a stage replace the named parts' weights of ``[prdl] part_weights`` for that
    stage only: the brows' share of the energy goes with their weight, and a stage without the key restores them."""
    case, masks, gt, crop = scene_case
    targets = build_targets(masks, crop, grid=24, skin_points=800, part_points=400)
    shifted = gt.detached()
    shifted.translation = shifted.translation + torch.tensor([[0.5, -0.3, 0.0]])
    scene = Scene(ict, shifted)

    def energy(term, stage):
        term.configure(stage)
        term.index = None
        term.rngs = [np.random.default_rng(0)]  # the same predicted points every time
        return float(term(scene))

    both = PRDLTerm(ict, targets, {"left_brow": 0.5}, max_points=300)
    full = energy(both, {})
    no_brows = energy(both, {"prdl_part_weights": {"left_brow": 0.0, "right_brow": 0.0}})
    only_brows = PRDLTerm(ict, targets, {p: (1.0 if p.endswith("brow") else 0.0) for p in PART_NAMES}, max_points=300)
    brows = energy(only_brows, {"prdl_part_weights": {"left_brow": 0.5}})
    assert 0 < no_brows < full
    assert no_brows + brows == pytest.approx(full, rel=1e-4)
    assert energy(both, {}) == pytest.approx(full, rel=1e-6)  # the next stage without the key: [prdl]'s weights

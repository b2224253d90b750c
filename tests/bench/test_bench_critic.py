"""The critic's application side (fitter.bench.critic): descending the critic stage from the truth, the fits
cached beside the pool, the seeds an eval must avoid, the ablation row without the critic, and the command
line's refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from fitter.bench import critic as bench_critic
from fitter.bench.synthetic import ABLATION_ROWS, row_preset
from fitter.critic.network import Architecture, CriticNet, freeze
from fitter.optimize.presets import load_preset
from critic_photos import clean_photos
from paths import EXAMPLES

SMALL = Architecture(32, (8, 16, 16))


@pytest.fixture(scope="module")
def photo(ict):
    return clean_photos(ict, 1, size=320)[0]


def test_state_and_geometry_round_trip(ict, photo):
    state = bench_critic.state_of(ict, photo.truth, photo.image_size)
    g = bench_critic.geometry_of(state)
    for name in ("identity", "expression", "rotation", "translation"):
        assert np.allclose(getattr(g, name), getattr(photo.truth, name), atol=1e-6)
    assert g.focal == pytest.approx(photo.truth.focal, rel=1e-5)


def test_critic_stage(ict):
    preset = load_preset("critic")
    assert bench_critic.critic_stage(preset)["name"] == "critic"
    with pytest.raises(ValueError, match="no stage that weighs the critic"):
        bench_critic.critic_stage(load_preset("fast"))


def test_descent_uses_the_critic_stage_without_its_data_terms(ict, photo):
    """From the truth, with the critic off ([critic] weight = 0), only the stage's priors act: the identity
    shrinks towards the mean, the pose (not freed by the stage) stays."""
    preset = load_preset("critic")
    preset["critic"] = dict(preset["critic"], weight=0.0)
    net = freeze(CriticNet(SMALL, spectral=False))
    g = bench_critic.descend_from_truth(ict, photo, net, preset)
    assert np.linalg.norm(g.identity) < np.linalg.norm(photo.truth.identity)
    assert np.allclose(g.rotation, photo.truth.rotation) and np.allclose(g.translation, photo.truth.translation)


def test_fits_are_cached_beside_the_pool(ict, photo, tmp_path, monkeypatch):
    preset = load_preset("fast")
    first = bench_critic.cached_fit(ict, photo, preset, tmp_path)
    assert first is not None and np.isfinite(first.identity).all()
    monkeypatch.setattr(bench_critic, "fit_photo", lambda *a: pytest.fail("refitted a cached photo"))
    again = bench_critic.cached_fit(ict, photo, preset, tmp_path)
    assert np.array_equal(again.identity, first.identity) and again.focal == first.focal


def test_exploit_miner_fits_with_the_network_it_is_given(ict, photo, tmp_path, monkeypatch):
    """Each round writes the current network beside the run and fits through a preset that loads it."""
    seen = []

    def fake_fit(model, p, preset):
        net, _ = bench_critic.load_critic(preset["critic"]["weights"])
        seen.append((preset["critic"]["weights"], net))
        return None  # no detection: nothing mined

    monkeypatch.setattr(bench_critic, "fit_photo", fake_fit)
    miner = bench_critic.ExploitMiner(ict, 1, load_preset("critic"), tmp_path / "mining")
    net = freeze(CriticNet(SMALL, spectral=False))
    assert miner.mine(net, [photo], np.random.default_rng(0)) == []
    weights, loaded = seen[0]
    assert weights == str(tmp_path / "mining" / "critic_round1.npz")
    x, g = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    assert torch.allclose(loaded(x, g), net(x, g), atol=1e-2)  # float16 storage
    miner.mine(net, [photo], np.random.default_rng(0))
    assert seen[1][0].endswith("critic_round2.npz")


def test_matching_face_needs_overlap(photo):
    face = bench_critic.truth_observation(photo)
    assert bench_critic.matching_face([face], photo.landmarks) is face
    far = bench_critic.truth_observation(photo)
    far.landmarks = far.landmarks + 500.0
    assert bench_critic.matching_face([far], photo.landmarks) is None


def test_training_seeds():
    assert bench_critic.training_seeds({"seeds": {"training_photos": 1000, "heldout_photos": 1001}}) == {1000, 1001}
    assert bench_critic.training_seeds({}) == set()


def test_ablation_row_without_the_critic():
    rows = {row["name"]: row for row in ABLATION_ROWS}
    with_critic, without = row_preset(rows["critic"]), row_preset(rows["default-critic"])
    assert [s["name"] for s in with_critic["stages"]] == [s["name"] for s in without["stages"]]
    assert any(s["weights"].get("critic") for s in with_critic["stages"])
    assert not any(s["weights"].get("critic") for s in without["stages"])


def test_eval_refuses_a_training_seed(tmp_path):
    result = CliRunner().invoke(main, ["critic", "eval", "--seed", "1000", "--n", "1", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "trained on seeds" in result.output


def test_fit_critic_off(tmp_path):
    """`facefit fit --critic off` fits with the preset's [critic] weight at 0 (recorded in report.json)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["fit", str(EXAMPLES / "grace_hopper.jpg"), "--preset", "fast", "--critic",
                                       "off", "-o", str(out)])
    assert result.exit_code == 0, result.output
    (report,) = out.glob("*/report.json")
    assert json.loads(report.read_text())["settings"]["preset"]["critic"]["weight"] == 0.0

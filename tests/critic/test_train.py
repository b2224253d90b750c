"""Training the critic: the paired ranking loss learns to rank the truth above negatives, the held-out metrics
say so, and a training pair shows the same photo with two geometries over one background."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.critic.align import NO_JITTER, CropJitter, training_crop
from fitter.critic.network import Architecture, CriticNet
from fitter.critic.pairs import MINED, PairSource, heldout_pairs
from fitter.critic.train import Recipe, pair_loss, ranking_metrics, roc_auc, train
from fitter.crop import FitCrop
from critic_photos import clean_photos

SMALL = Architecture(32, (8, 16, 32))


@pytest.fixture(scope="module")
def photos(ict):
    return clean_photos(ict, 6)


def test_roc_auc():
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert roc_auc(np.array([0.0]), np.array([1.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5  # ties count one half


def test_training_crop(photos):
    p = photos[0]
    exact = training_crop(p.landmarks, 96, 0.25, np.random.default_rng(0), NO_JITTER)
    assert exact == FitCrop.around(p.landmarks, 96, 0.25)
    sides = [training_crop(p.landmarks, 96, 0.25, np.random.default_rng(k), CropJitter()).side for k in range(30)]
    assert 0.01 < np.std(sides) / exact.side < 0.15


def test_pairs_share_photo_and_background(ict, photos):
    source = PairSource(ict, photos, {"random": 1.0}, 32, 0.25, CropJitter(), np.random.default_rng(0))
    pairs = source.batch(4)
    assert pairs.photo.shape == (4, 3, 32, 32) and pairs.positive.shape == pairs.negative.shape == (4, 1, 32, 32)
    # where neither render has the face, both show the same seeded noise
    same = (pairs.positive - pairs.negative).abs() < 1e-6
    assert float(same.float().mean()) > 0.3 and bool((~same).any())
    assert (pairs.error_mm >= 0).all() and pairs.kinds == ["random"] * 4


def test_ranking_metrics_per_kind(ict, photos):
    held = heldout_pairs(ict, photos[:2], ("random", "pose"), 2, 32, 0.25, NO_JITTER, seed=3)
    assert held.kinds == ["random", "random", "pose", "pose"] * 2
    net = CriticNet(SMALL)
    net.eval()
    m = ranking_metrics(net, held)
    assert set(m["accuracy"]) == {"random", "pose"} and 0 <= m["auc"] <= 1
    assert 0 <= m["accuracy_other_photo"] <= 1
    assert torch.equal(held.other_photos()[:4], held.photo[4:])  # another photo's crop, not the same one


def test_loss_prefers_a_wide_gap(ict, photos):
    """The graded margin: the same scores cost more when the negative is more millimetres wrong."""
    source = PairSource(ict, photos, {"random": 1.0}, 32, 0.25, NO_JITTER, np.random.default_rng(1))
    pairs = source.batch(2)
    net = CriticNet(SMALL)
    recipe = Recipe(margin_per_mm=1.0)
    near, _ = pair_loss(net, pairs, recipe, r1=False)
    pairs.error_mm = pairs.error_mm + 2.0
    far, _ = pair_loss(net, pairs, recipe, r1=False)
    assert float(far.detach()) > float(near.detach())
    with_r1, info = pair_loss(net, pairs, recipe, r1=True)
    assert info["r1"] > 0 and float(with_r1.detach()) > float(far.detach())


def test_mined_negatives_ask_a_minimum_gap(ict, photos):
    """A mined negative 0.3 mm from the truth (a descent of the critic) is asked the gap of
    ``mined_margin_floor_mm``; another kind with the same label is not."""
    source = PairSource(ict, photos, {"random": 1.0}, 32, 0.25, NO_JITTER, np.random.default_rng(3))
    pairs = source.batch(2)
    pairs.error_mm = torch.full_like(pairs.error_mm, 0.3)
    net = CriticNet(SMALL)
    recipe = Recipe(margin_per_mm=1.0, mined_margin_floor_mm=2.0)
    sampled, _ = pair_loss(net, pairs, recipe, r1=False)
    pairs.kinds = [MINED] * len(pairs)
    mined, _ = pair_loss(net, pairs, recipe, r1=False)
    assert float(mined.detach()) > float(sampled.detach()) + 0.5
    off, _ = pair_loss(net, pairs, Recipe(margin_per_mm=1.0, mined_margin_floor_mm=0.0), r1=False)
    assert float(off.detach()) == pytest.approx(float(sampled.detach()), rel=1e-4)


def test_steps_raise_the_truth_above_negatives(ict, photos):
    """Optimiser steps on the paired loss move the scores the right way: a fixed batch ends ranked."""
    source = PairSource(ict, photos, {"random": 1.0, "pose": 1.0}, 32, 0.25, NO_JITTER, np.random.default_rng(2))
    pairs = source.batch(8)
    torch.manual_seed(0)
    net = CriticNet(SMALL)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    recipe = Recipe(margin_per_mm=0.05)
    for _ in range(60):
        loss, info = pair_loss(net, pairs, recipe, r1=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert info["batch_accuracy"] == 1.0


class ShiftMiner:
    """Mines the truth of the first photo shifted sideways by 5 mm (a fixed, known negative)."""

    name = "shift"

    def __init__(self):
        self.calls = []

    def mine(self, critic, photos, rng):
        self.calls.append(critic.training)
        g = photos[0].truth
        return [(0, g.replace(translation=g.translation + np.float32([0.5, 0.0, 0.0])))]


def test_train_end_to_end(ict, photos, monkeypatch):
    """train(): pools from the seed and seed + 1, held-out history every eval_every steps, miners at their
    rounds with a frozen copy of the critic, the card's fields."""
    import fitter.critic.train as train_module

    seeds = []

    def pool(model, seed, count, *args, **kwargs):
        seeds.append(seed)
        return photos[:3] if seed == 1009 else photos[3:5]

    monkeypatch.setattr(train_module, "load_pool", pool)
    miner = ShiftMiner()
    recipe = Recipe(seed=1009, photos=3, heldout_photos=2, heldout_per_kind=1, steps=6, batch=4, arch=SMALL,
                    eval_every=3, mixture={"random": 1.0, "mined": 1.0},
                    mining={"shift": {"photos": 1, "at": [0.0, 0.5]}})
    result = train(ict, recipe, miners=[miner])
    assert seeds == [1009, 1010]
    assert result.steps == 6 and [h["step"] for h in result.history] == [3, 6]
    assert miner.calls == [False, False] and result.mined == {"shift": 2}
    card = train_module.card(result)
    assert card["seeds"]["training_photos"] == 1009 and card["seeds"]["heldout_photos"] == 1010
    assert card["steps_run"] == 6 and card["torch"] == torch.__version__ and "MIT" in card["licence"]
    assert set(card["heldout"]["accuracy"]) == set(train_module.HELDOUT_KINDS)

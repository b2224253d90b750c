"""The shipped critic (assets/critic_shape.npz) and its card: they belong together, say how they were made,
trained on seeds no benchmark uses, and load as the default preset's critic."""
from __future__ import annotations

import json

from fitter.assets import asset_path
from fitter.critic.network import parameter_count
from fitter.critic.train import RESERVED_SEEDS
from fitter.critic.weights import SHIPPED, card_path, load_critic
from fitter.io import file_content_hash
from fitter.optimize.presets import load_preset

BENCHMARK_SEEDS = {0, 1, 2}
MAX_BYTES = 8 * 2**20  # "a few MB"


def test_card_describes_the_weights():
    path = asset_path(SHIPPED)
    card = json.loads(card_path(path).read_text())
    assert card["sha256"] == file_content_hash(path) and card["bytes"] == path.stat().st_size <= MAX_BYTES
    assert card["licence"].startswith("MIT") and card["torch"] and card["facefit"]
    seeds = card["seeds"]
    for key in ("training_photos", "heldout_photos"):
        assert seeds[key] in RESERVED_SEEDS and seeds[key] not in BENCHMARK_SEEDS
    assert card["recipe"]["seed"] == seeds["training_photos"] and card["steps_run"] > 0
    assert set(card["heldout"]["accuracy"]) >= {"random", "landmark_preserving", "pose"}
    assert card["data"]["training_photos"] == card["recipe"]["photos"]


def test_loads_as_the_presets_critic():
    preset = load_preset("default")
    net, card = load_critic(preset["critic"]["weights"])
    assert net.arch.size == preset["critic"]["render_size"] == card["architecture"]["size"]
    assert parameter_count(net) == card["parameters"] and not net.training
    assert card["recipe"]["crop_margin"] == preset["crop"]["margin"]  # trained on the fitting crop

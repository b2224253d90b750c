"""The critic network and its weights on disk: spectral normalisation folded in, float16 storage, a card whose
sha256 must match."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fitter.critic.network import Architecture, CriticNet, parameter_count, plain_copy
from fitter.critic.weights import CriticWeightsError, card_path, load_critic, save_weights

SMALL = Architecture(32, (8, 16, 16))


def inputs(batch=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g), torch.rand(batch, 1, size, size, generator=g)


def test_scores_one_number_per_pair():
    net = CriticNet(SMALL)
    assert net(*inputs()).shape == (3,)
    assert 1.5e6 < parameter_count(CriticNet()) < 2.0e6  # the default: small enough for CPU fitting


def test_spectral_norm_bounds_every_layer():
    net = CriticNet(SMALL)
    net.train()
    for _ in range(20):  # power iterations converge while training
        net(*inputs())
    net.eval()
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            w = module.weight.detach().reshape(module.weight.shape[0], -1)
            assert float(torch.linalg.matrix_norm(w, 2)) < 1.05


def test_plain_copy_scores_alike():
    net = CriticNet(SMALL)
    net.train()
    net(*inputs())
    net.eval()
    copy = plain_copy(net)
    assert torch.allclose(copy(*inputs()), net(*inputs()), atol=1e-6)
    assert not any(p.requires_grad for p in copy.parameters()) and not copy.training


def test_save_load_roundtrip(tmp_path):
    net = CriticNet(SMALL)
    net.eval()
    path = tmp_path / "critic.npz"
    card = save_weights(path, net, {"seeds": {"training_photos": 1000}})
    assert card_path(path).exists() and json.loads(card_path(path).read_text())["sha256"] == card["sha256"]
    loaded, loaded_card = load_critic(path)
    assert loaded.arch == SMALL and loaded_card["seeds"]["training_photos"] == 1000
    photo, grey = inputs()
    assert torch.allclose(loaded(photo, grey), net(photo, grey), atol=2e-2)  # float16 storage
    with np.load(path) as data:
        assert all(data[k].dtype == np.float16 for k in data.files if not k.startswith("__"))


def test_card_mismatch_is_an_error(tmp_path):
    net = CriticNet(SMALL)
    path = tmp_path / "critic.npz"
    save_weights(path, net, {})
    card = json.loads(card_path(path).read_text())
    card_path(path).write_text(json.dumps(dict(card, sha256="0" * 64)))
    with pytest.raises(CriticWeightsError, match="does not match its card"):
        load_critic(path)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(CriticWeightsError, match="no such file or shipped asset"):
        load_critic(tmp_path / "nothing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(CriticWeightsError, match="not a critic weights file"):
        load_critic(bad)

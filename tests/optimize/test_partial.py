"""Stages moving part of the expression (fitter.optimize.partial): which coefficients a stage's
``expression_free`` patterns name, and that run_stage moves only those, with either optimiser."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.energy.base import Term
from fitter.model.morphable import MorphableModel
from fitter.optimize.partial import expression_mask
from fitter.optimize.presets import PresetError, load_preset
from fitter.optimize.schedule import run_stage
from fitter.common.settings import SettingError
from fitter.optimize.schema import check_document
from fitter.state import FitState
from small_models import plane_model

NAMES = ["browDown_L", "jawOpen", "mouthSmile_L", "mouthSmile_R"]
TARGET = torch.tensor([0.5, 0.4, 0.3, 0.2])  # where the term wants each expression coefficient
SETTINGS = load_preset("fast")["optimizer"]


class ExpressionPull(Term):
    """|expression - TARGET|^2 per frame."""

    name = "pull"

    def __call__(self, scene) -> torch.Tensor:
        return ((scene.state.expression - TARGET) ** 2).sum(-1)


@pytest.fixture()
def model() -> MorphableModel:
    base = plane_model()
    basis = np.repeat(base.expression_basis.numpy().reshape(1, -1, 3), len(NAMES), 0)
    return MorphableModel(base.mean.numpy(), base.identity_basis.numpy().reshape(1, -1, 3), basis, base.topology,
                          expression_names=NAMES, name="plane4")


class TestExpressionMask:
    def test_patterns_select_names(self):
        assert expression_mask(NAMES, ["jaw*", "mouth*"]).tolist() == [False, True, True, True]
        assert expression_mask(NAMES, ["mouthSmile_R"]).tolist() == [False, False, False, True]

    def test_case_sensitive(self):
        with pytest.raises(ValueError, match="'Jaw\\*' matches no expression"):
            expression_mask(NAMES, ["Jaw*"], "photometric-64")

    def test_unmatched_pattern_names_the_stage(self):
        with pytest.raises(ValueError, match="stage 'p'.*'eye\\*'"):
            expression_mask(NAMES, ["jaw*", "eye*"], "p")

    def test_schema_takes_a_list_of_names(self):
        stage = {"name": "p", "free": ["expression"], "iterations": 1, "weights": {"landmarks": 1.0},
                 "expression_free": "jaw*"}
        with pytest.raises(SettingError, match="expression_free"):
            check_document({"stages": [stage]}, "cfg.toml")
        check_document({"stages": [dict(stage, expression_free=["jaw*"])]}, "cfg.toml")


class TestRunStageHoldsExpression:
    @pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
    def test_only_named_coefficients_move(self, model, optimizer):
        state = FitState.single(model.num_identity, model.num_expression, (64, 64), 300.0, frames=2)
        stage = {"name": "p", "free": ["expression"], "iterations": 200, "rounds": 1, "weights": {"pull": 1.0},
                 "optimizer": optimizer, "lr": 0.05, "expression_free": ["mouth*"]}
        run_stage(model, state, stage, {"pull": ExpressionPull()}, SETTINGS)
        got = state.expression.detach()
        assert torch.equal(got[:, :2], torch.zeros(2, 2))  # browDown_L and jawOpen held
        assert torch.allclose(got[:, 2:], TARGET[2:].expand(2, 2), atol=2e-2)  # the mouth reached its target
        assert not state.expression.requires_grad  # the mask does not outlive the stage

    def test_without_the_key_every_coefficient_moves(self, model):
        state = FitState.single(model.num_identity, model.num_expression, (64, 64), 300.0)
        stage = {"name": "p", "free": ["expression"], "iterations": 50, "rounds": 1, "weights": {"pull": 1.0}}
        run_stage(model, state, stage, {"pull": ExpressionPull()}, SETTINGS)
        assert torch.allclose(state.expression.detach()[0], TARGET, atol=1e-4)


class TestConfigCheck:
    def test_preset_config_with_unknown_blendshape_is_refused(self, tmp_path):
        cfg = tmp_path / "mouth.toml"
        cfg.write_text('[[append_stages]]\nname = "mouth"\nfree = ["expression"]\niterations = 5\n'
                       'weights = { landmarks = 1.0 }\nexpression_free = ["jawOpen", "lipPucker"]\n')
        with pytest.raises(PresetError, match=r"mouth.toml: stage 'mouth'.*'lipPucker' matches no expression"):
            load_preset("fast", cfg)
        cfg.write_text(cfg.read_text().replace("lipPucker", "mouthPucker"))
        assert load_preset("fast", cfg)["stages"][-1]["expression_free"] == ["jawOpen", "mouthPucker"]

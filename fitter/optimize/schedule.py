"""Runs a preset's stages: each frees some FitState tensors and lowers a weighted sum of energy terms."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..model.morphable import MorphableModel
from ..scene import Scene
from ..state import FitState


@dataclass
class StageLog:
    name: str
    seconds: float = 0.0
    evaluations: int = 0
    energies: dict[str, float] = field(default_factory=dict)  # weighted, summed over frames
    total: float = 0.0
    skipped_terms: list[str] = field(default_factory=list)


def evaluate(model: MorphableModel, state: FitState, terms: dict, weights: dict[str, float]) -> dict[str, float]:
    """Weighted energy of each term (summed over frames) without gradients."""
    with torch.no_grad():
        scene = Scene(model, state)
        return {name: float(weights[name] * terms[name](scene).sum()) for name in weights if name in terms}


def adam_groups(state: FitState, names: list[str], lr) -> list[dict]:
    """Adam parameter groups: one learning rate for all, or a table of rates by parameter name."""
    tensors = state.tensors()
    if isinstance(lr, dict):
        missing = [n for n in names if n not in lr]
        if missing:
            raise ValueError(f"the stage's lr table has no rate for {missing}")
        return [{"params": [tensors[n]], "lr": float(lr[n])} for n in names]
    return [{"params": [tensors[n] for n in names], "lr": float(lr)}]


def run_stage(model: MorphableModel, state: FitState, stage: dict, terms: dict) -> StageLog:
    """Optimise ``stage['free']`` for ``stage['rounds']`` rounds of L-BFGS (or Adam) iterations."""
    start = time.perf_counter()
    log = StageLog(stage["name"])
    weights = {k: float(v) for k, v in stage["weights"].items() if float(v) != 0.0}
    log.skipped_terms = sorted(k for k in weights if k not in terms)
    active = {k: terms[k] for k in weights if k in terms}
    params = state.free(list(stage["free"]))
    if not params or not active:
        log.energies = evaluate(model, state, active, weights)
        log.total = sum(log.energies.values())
        return log

    def energy() -> torch.Tensor:
        scene = Scene(model, state)
        return sum(weights[k] * term(scene).sum() for k, term in active.items())

    for _ in range(int(stage.get("rounds", 1))):
        scene = Scene(model, state)
        for term in active.values():  # between rounds: discrete updates (contour choice, visibility sets)
            if hasattr(term, "update"):
                term.update(scene)
        optimizer_name = stage.get("optimizer", "lbfgs")
        if optimizer_name == "lbfgs":
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(stage["iterations"]), history_size=20,
                                    line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

            def closure() -> torch.Tensor:
                opt.zero_grad()
                e = energy()
                e.backward()
                log.evaluations += 1
                return e

            opt.step(closure)
        elif optimizer_name == "adam":
            opt = torch.optim.Adam(adam_groups(state, list(stage["free"]), stage.get("lr", 1e-2)))
            for _ in range(int(stage["iterations"])):
                opt.zero_grad()
                e = energy()
                e.backward()
                opt.step()
                log.evaluations += 1
        else:
            raise ValueError(f"stage {stage['name']!r}: unknown optimizer {optimizer_name!r} (lbfgs or adam)")
    with torch.no_grad():
        state.expression.clamp_(0.0, 1.0)
    state.free([])
    log.energies = evaluate(model, state, active, weights)
    log.total = sum(log.energies.values())
    log.seconds = time.perf_counter() - start
    return log

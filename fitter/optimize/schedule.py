"""Runs a preset's stages: each frees some FitState tensors and lowers a weighted sum of energy terms.

The schedule calls the terms' hooks (fitter.energy.base.Term): ``update`` before every optimiser round. The
driver (fitter.optimize.fit) calls ``configure`` and ``initialise`` before a stage. A stage whose energy or
parameters end non-finite raises :class:`NonFiniteFit` naming the stage and the term or parameter, so a
broken fit is a failure with a reason, never a result.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from ..model.morphable import MorphableModel
from ..scene import Scene
from ..state import FitState
from .dolly import dolly_free, dolly_translation
from .partial import STAGE_KEY, expression_mask, hold_expression
from .views import turn_weights, view_weights


class NonFiniteFit(RuntimeError):
    """A stage left a non-finite energy or parameter (the message names the stage and what went wrong)."""


class _LineSearchBroke(RuntimeError):
    """torch's strong-Wolfe line search tried a point where the energy is not finite, from a round that began
    finite: on a non-smooth energy (PRDL's nearest and farthest distances) the search can
    extrapolate absurdly far (log focal ~400) or interpolate 0/0. The round keeps its best finite point."""


@dataclass
class StageLog:
    name: str
    seconds: float = 0.0
    evaluations: int = 0
    energies: dict[str, float] = field(default_factory=dict)  # weighted, summed over frames
    total: float = 0.0
    skipped_terms: list[str] = field(default_factory=list)
    line_search_failures: int = 0  # L-BFGS rounds ended early at their best point (see _LineSearchBroke)


def evaluate(model: MorphableModel, state: FitState, terms: dict, weights: dict[str, float],
             frame_weights: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Weighted energy of each term (summed over frames) without gradients."""
    with torch.no_grad():
        scene = Scene(model, state)
        return {name: float(weights[name] * frame_sum(terms[name](scene), (frame_weights or {}).get(name)))
                for name in weights if name in terms}


def frame_sum(values: torch.Tensor, frame_weights: torch.Tensor | None) -> torch.Tensor:
    """A term's per-frame values (F,) summed, each weighted by its frame's weight when there is one."""
    return values.sum() if frame_weights is None else (values * frame_weights).sum()


def stage_frame_weights(state: FitState, stage: dict, names) -> dict[str, torch.Tensor]:
    """Per-image weights of the stage's turn- and view-weighted terms (fitter.optimize.views): the fit driver puts
    the preset's ``turn_weights`` in every stage, multi-view phases ``view_weights``; a term in both gets their
    product; none when neither is set."""
    out: dict[str, torch.Tensor] = {}
    for key, weigh in (("turn_weights", turn_weights), ("view_weights", view_weights)):
        spec = stage.get(key)
        if not spec or not any(name in spec["terms"] for name in names):
            continue
        weights = weigh(state, float(spec["degrees"]), float(spec["power"]))
        for name in names:
            if name in spec["terms"]:
                out[name] = out[name] * weights if name in out else weights
    return out


def adam_groups(state: FitState, names: list[str], lr) -> list[dict]:
    """Adam parameter groups: one learning rate for all, or a table of rates by parameter name."""
    tensors = state.tensors()
    if isinstance(lr, dict):
        missing = [n for n in names if n not in lr]
        if missing:
            raise ValueError(f"the stage's lr table has no rate for {missing}")
        return [{"params": [tensors[n]], "lr": float(lr[n])} for n in names]
    return [{"params": [tensors[n] for n in names], "lr": float(lr)}]


def check_finite(stage: str, energies: dict[str, float], state: FitState) -> None:
    """Raise :class:`NonFiniteFit` when a term's energy or a parameter is NaN or infinite."""
    for name, value in energies.items():
        if not math.isfinite(value):
            raise NonFiniteFit(f"stage {stage!r}: energy term {name!r} is {value} (non-finite); the fit is "
                               "discarded — check the term's weights and settings in the preset/config")
    for name, tensor in state.tensors().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteFit(f"stage {stage!r}: parameter {name!r} became non-finite; the fit is discarded")


def adam_rate_factor(step: int, iterations: int, end: float) -> float:
    """Cosine decay of Adam's rate from 1 at the first step to ``end`` at the last: a constant rate ends the stage
    wherever the last steps' oscillation left it (on the photometric energy, whose gradient changes with
    visibility, Adam keeps stepping by about its rate), a decayed one settles."""
    if end >= 1.0 or iterations <= 1:
        return 1.0
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * step / (iterations - 1)))


def run_stage(model: MorphableModel, state: FitState, stage: dict, terms: dict, settings: dict) -> StageLog:
    """Optimise ``stage['free']`` for ``stage['rounds']`` rounds of L-BFGS (or Adam) iterations.

    ``settings``: the preset's [optimizer] section (L-BFGS memory and tolerances, Adam's default rate)."""
    start = time.perf_counter()
    log = StageLog(stage["name"])
    weights = {k: float(v) for k, v in stage["weights"].items() if float(v) != 0.0}
    log.skipped_terms = sorted(k for k in weights if k not in terms)
    active = {k: terms[k] for k in weights if k in terms}
    free = dolly_free(state, stage)
    params = state.free(free)
    if params and STAGE_KEY in stage and "expression" in stage["free"]:
        hold_expression(state.expression, expression_mask(model.expression_names, list(stage[STAGE_KEY]),
                                                          stage["name"]))
    if params and active:
        _optimise(model, state, stage, active, weights, free, params, settings, log)
        bounds = model.expression_bounds
        if bounds is not None:
            with torch.no_grad():
                state.expression.clamp_(*bounds)
    state.free([])
    log.energies = evaluate(model, state, active, weights, stage_frame_weights(state, stage, active))
    log.total = sum(log.energies.values())
    log.seconds = time.perf_counter() - start
    check_finite(stage["name"], log.energies, state)
    return log


def _optimise(model, state, stage, active, weights, free, params, settings, log) -> None:
    frame_weights: dict[str, torch.Tensor] = {}

    def energy() -> torch.Tensor:
        scene = Scene(model, state)
        total = 0.0
        for name, term in active.items():
            value = frame_sum(term(scene), frame_weights.get(name))
            if not bool(torch.isfinite(value)):  # blame the first term to go non-finite, before its NaN
                raise NonFiniteFit(f"stage {stage['name']!r}: energy term {name!r} is {float(value.detach())} "
                                   "(non-finite); the fit is discarded — check the term's weights and settings "
                                   "in the preset/config")  # gradient spreads to every parameter and term
            total = total + weights[name] * value
        return total

    optimizer_name = stage.get("optimizer", "lbfgs")
    names = {id(t): n for n, t in state.tensors().items()}
    for _ in range(int(stage.get("rounds", 1))):
        scene = Scene(model, state)
        for term in active.values():  # between rounds: discrete updates (contour choice, visibility sets)
            term.update(scene)
        frame_weights.update(stage_frame_weights(state, stage, active))  # a multi-view instant's views
        if optimizer_name == "lbfgs":
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(stage["iterations"]),
                                    history_size=int(settings["lbfgs_history"]),
                                    line_search_fn="strong_wolfe",
                                    tolerance_grad=float(settings["lbfgs_tolerance_grad"]),
                                    tolerance_change=float(settings["lbfgs_tolerance_change"]))
            best: dict = {"energy": math.inf, "params": [p.detach().clone() for p in params]}

            def closure() -> torch.Tensor:
                opt.zero_grad()
                try:
                    e = energy()
                except NonFiniteFit:
                    if math.isfinite(best["energy"]):  # finite where the round began: the step overshot
                        raise _LineSearchBroke from None
                    raise
                e.backward()
                log.evaluations += 1
                for p in params:
                    if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                        raise NonFiniteFit(f"stage {stage['name']!r}: the gradient of {names[id(p)]!r} is not "
                                           "finite; the fit is discarded — check the term's weights and settings")
                value = float(e.detach())
                if value < best["energy"]:
                    best["energy"], best["params"] = value, [p.detach().clone() for p in params]
                return e

            try:
                opt.step(closure)
            except _LineSearchBroke:
                with torch.no_grad():
                    for p, b in zip(params, best["params"]):
                        p.copy_(b)
                log.line_search_failures += 1
        elif optimizer_name == "adam":
            lr = stage.get("lr", settings["adam_lr"])
            opt = torch.optim.Adam(adam_groups(state, free, lr))
            iterations, end = int(stage["iterations"]), float(stage.get("lr_end", 1.0))
            dolly = bool(stage.get("dolly", False)) and "log_focal" in free
            rates = [g["lr"] for g in opt.param_groups]
            for k in range(iterations):
                factor = adam_rate_factor(k, iterations, end)
                for g, rate in zip(opt.param_groups, rates):
                    g["lr"] = rate * factor
                opt.zero_grad()
                e = energy()
                e.backward()
                before = state.log_focal.detach().clone() if dolly else None
                opt.step()
                if dolly:
                    dolly_translation(model, state, before)
                log.evaluations += 1
        else:
            raise ValueError(f"stage {stage['name']!r}: unknown optimizer {optimizer_name!r} (lbfgs or adam)")

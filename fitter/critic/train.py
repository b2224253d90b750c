"""Training the critic: a paired ranking loss on pool photos, with a graded margin, R1 and mined negatives.

For a photo x, its truth's grey render g+ and a negative's g- with error e (mm), the loss is
``softplus(D(x, g-) - D(x, g+) + margin(e))`` with ``margin(e) = margin_per_mm * min(e, margin_cap_mm)``: the
score gap must grow with the millimetres, not merely have the right sign. Scoring the same photo twice is what
makes the task learnable (an unpaired GAN-style hinge loss learnt nothing in the feasibility probe); the
score's offset per photo is free, so a small ``anchor`` term keeps positives near zero. R1 (the squared
gradient of D(x, g+) w.r.t. both inputs, lazily every ``r1_every`` steps) keeps the landscape flat at the
truth, where a fit that reaches it should stop. Between steps, miners (fitter.bench.critic: the fitter's own
wrong answers, geometry found by descending the critic from the truth) add negatives.

Everything that decides the weights is in :class:`Recipe` and lands in the card; training photos come from
``sample_case(model, index, seed)`` with ``seed = recipe.seed`` and held-out ones from ``recipe.seed + 1``
(see ``RESERVED_SEEDS``), disjoint from the benchmarks' seeds 0, 1 and 2.
"""
from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as nnf
from scipy.stats import rankdata

from .. import __version__
from ..model.morphable import MorphableModel
from .align import CropJitter
from .network import Architecture, CriticNet, parameter_count, plain_copy
from .pairs import MINED, PairSource, Pairs, heldout_pairs
from .pool import Geometry, PoolPhoto, load_pool

# Seeds of sample_case the critic owns: 1000 trains the shipped weights, 1001 is its held-out set during
# training, 1002 is `facefit critic eval`'s default; 1003..1009 are kept free for longer or repeated runs.
# The benchmarks use seeds 0, 1 and 2.
RESERVED_SEEDS = range(1000, 1010)
DEFAULT_SEED = 1000
EVAL_SEED = 1002
HELDOUT_KINDS = ("random", "landmark_preserving", "pose", "depth", "swap")
LICENCE = "MIT (facefit's own code and training; the training faces are renders of the ICT FaceKit model, MIT)"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights (the card records it)."""

    seed: int = DEFAULT_SEED
    photos: int = 600  # training photos (seed), rendered once into the pool cache
    heldout_photos: int = 48  # held-out photos (seed + 1)
    heldout_per_kind: int = 2  # held-out negatives of each kind per photo
    steps: int = 6000  # optimiser steps (a --minutes cap may stop earlier; the card says how many ran)
    batch: int = 32  # pairs per step
    lr: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.99)
    margin_per_mm: float = 0.2  # score gap asked per millimetre of a negative's error ...
    margin_cap_mm: float = 6.0  # ... up to this error
    mined_margin_floor_mm: float = 0.0  # > 0: a mined negative (a fit, a descent) asks at least this error's gap
                                        # (descents sit 0.3 mm from the truth, where the graded margin asks almost
                                        # none); 2.0 with exploit rounds did not help (docs/critic.md)
    anchor: float = 1e-3  # weight of mean D(x, g+)^2 (the score's free offset)
    r1_gamma: float = 0.1  # R1 weight (gamma / 2 * |grad D(x, g+)|^2)
    r1_every: int = 4  # lazy R1: every this many steps, scaled by it
    mixture: dict = field(default_factory=lambda: {"landmark_preserving": 0.3, "random": 0.2, "pose": 0.15,
                                                   "depth": 0.1, "swap": 0.05, MINED: 0.2})
    crop_margin: float = 0.25  # the preset's [crop] margin (alignment as at fit time)
    jitter: CropJitter = CropJitter()
    arch: Architecture = Architecture()
    spectral: bool = True  # spectral normalisation of every layer while training
    eval_every: int = 100  # steps between held-out evaluations
    # miners by name: how many photos each mines per round, with which preset, at which fractions of the steps
    mining: dict = field(default_factory=lambda: {
        "fits": {"photos": 96, "preset": "fast", "at": [0.0]},
        "descent": {"photos": 32, "preset": "critic", "at": [0.3, 0.55, 0.8]},
        "exploits": {"photos": 0, "preset": "critic", "at": [0.45, 0.7]}})  # 0: off (docs/critic.md)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["jitter"] = self.jitter.as_dict()
        out["arch"] = self.arch.as_dict()
        return out


class Miner(Protocol):
    """Adds negatives between steps: returns (photo position in the pool, wrong geometry) pairs."""

    name: str

    def mine(self, critic: CriticNet, photos: list[PoolPhoto], rng: np.random.Generator) -> list[tuple[int, Geometry]]:
        ...


# Called as progress(phase, done, total, info): phase "pool", "heldout", "mine:<name>", "train".
TrainProgress = Callable[[str, int, int, dict], None]


@dataclass
class TrainResult:
    net: CriticNet
    recipe: Recipe
    steps: int
    seconds: dict[str, float]
    heldout: dict
    history: list[dict]
    mined: dict[str, int]


def ranking_metrics(net: CriticNet, pairs: Pairs, chunk: int = 128, other_photo: bool = True) -> dict:
    """Held-out ranking accuracy per kind (D(x, g+) > D(x, g-)), overall, the pooled ROC AUC of positive
    against negative scores, the score gap per mm of error, and (``other_photo``) the accuracy against
    another photo's crop."""
    sp, sn = pair_scores(net, pairs.photo, pairs, chunk)
    right = sp > sn
    kinds = np.array(pairs.kinds)
    out = {"accuracy": {str(k): float(right[kinds == k].mean()) for k in dict.fromkeys(pairs.kinds)}}
    out["accuracy_all"] = float(right.mean())
    out["auc"] = roc_auc(sp, sn)
    err = pairs.error_mm.numpy()
    gap = sp - sn
    out["gap_per_mm"] = float(np.polyfit(err, gap, 1)[0]) if len(err) > 1 and np.ptp(err) > 0 else float("nan")
    if not other_photo:
        return out
    # the same pairs judged against another photo's crop: near 0.5 when the critic compares the render with
    # the photo, as high as above when it only judges how plausible the grey face looks
    sp_other, sn_other = pair_scores(net, pairs.other_photos(), pairs, chunk)
    out["accuracy_other_photo"] = float((sp_other > sn_other).mean())
    return out


def pair_scores(net: CriticNet, photos: torch.Tensor, pairs: Pairs, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of each pair's positive and negative render against ``photos`` (one per pair)."""
    with torch.no_grad():
        pos, neg = [], []
        for i in range(0, len(pairs), chunk):
            pos.append(net(photos[i:i + chunk], pairs.positive[i:i + chunk]))
            neg.append(net(photos[i:i + chunk], pairs.negative[i:i + chunk]))
    return torch.cat(pos).numpy(), torch.cat(neg).numpy()


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting one half (Mann-Whitney)."""
    ranks = rankdata(np.concatenate([positive, negative]))  # ties get their mean rank
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pair_loss(net: CriticNet, pairs: Pairs, recipe: Recipe, r1: bool) -> tuple[torch.Tensor, dict]:
    photo, positive = pairs.photo, pairs.positive
    if r1:
        photo, positive = photo.clone().requires_grad_(True), positive.clone().requires_grad_(True)
    sp = net(photo, positive)
    sn = net(pairs.photo, pairs.negative)
    error = pairs.error_mm
    if recipe.mined_margin_floor_mm > 0:
        mined = torch.tensor([k == MINED for k in pairs.kinds], dtype=torch.bool, device=error.device)
        error = torch.where(mined, error.clamp(min=recipe.mined_margin_floor_mm), error)
    margin = recipe.margin_per_mm * error.clamp(max=recipe.margin_cap_mm)
    ranking = nnf.softplus(sn - sp + margin).mean()
    loss = ranking + recipe.anchor * (sp**2).mean()
    info = {"ranking": float(ranking.detach()), "batch_accuracy": float((sp > sn).float().mean())}
    if r1:
        grads = torch.autograd.grad(sp.sum(), [photo, positive], create_graph=True)
        penalty = sum(g.pow(2).flatten(1).sum(1) for g in grads).mean()
        loss = loss + recipe.r1_gamma / 2 * penalty * recipe.r1_every
        info["r1"] = float(penalty.detach())
    return loss, info


def train(model: MorphableModel, recipe: Recipe, cache_dir: Path | None = None, miners: list[Miner] = (),
          minutes: float | None = None, progress: TrainProgress | None = None) -> TrainResult:
    """Train a critic from ``recipe``; ``minutes`` caps the step loop's wall time (the card records the steps
    that ran, so the same seed and steps reproduce the weights)."""
    seconds: dict[str, float] = {}
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    t = time.perf_counter()
    pool = load_pool(model, recipe.seed, recipe.photos, cache_dir, _phase(progress, "pool"))
    held = load_pool(model, recipe.seed + 1, recipe.heldout_photos, cache_dir, _phase(progress, "pool (held out)"))
    seconds["pool"] = time.perf_counter() - t
    t = time.perf_counter()
    heldout = heldout_pairs(model, held, HELDOUT_KINDS, recipe.heldout_per_kind, recipe.arch.size,
                            recipe.crop_margin, recipe.jitter, recipe.seed + 1)
    seconds["heldout"] = time.perf_counter() - t
    source = PairSource(model, pool, recipe.mixture, recipe.arch.size, recipe.crop_margin, recipe.jitter, rng)
    net = CriticNet(recipe.arch, spectral=recipe.spectral)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, betas=recipe.betas)
    history: list[dict] = []
    mined: dict[str, int] = {}
    rounds = {m.name: {int(round(f * recipe.steps)) for f in recipe.mining.get(m.name, {}).get("at", [])}
              for m in miners}
    deadline = None if minutes is None else time.perf_counter() + 60.0 * minutes
    metrics: dict = {}
    t = time.perf_counter()
    mining_seconds = 0.0
    step = 0
    while step < recipe.steps:
        if deadline is not None and time.perf_counter() > deadline:
            break
        due = [m for m in miners if step in rounds[m.name]]
        if due:
            m0 = time.perf_counter()
            for miner in due:
                found = miner.mine(plain_copy(net), pool, rng)
                for position, geometry in found:
                    truth = pool[position].truth
                    source.add_mined(position, geometry, source.sampler.shape_error_mm(geometry, truth))
                mined[miner.name] = mined.get(miner.name, 0) + len(found)
            mining_seconds += time.perf_counter() - m0
        net.train()
        loss, info = pair_loss(net, source.batch(recipe.batch), recipe, r1=step % recipe.r1_every == 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % recipe.eval_every == 0 or step == recipe.steps:
            net.eval()
            metrics = ranking_metrics(net, heldout, other_photo=False)
            history.append({"step": step, "seconds": time.perf_counter() - t, **info, **metrics})
        if progress:
            progress("train", step, recipe.steps, {**info, **metrics})
    net.eval()
    seconds["train"] = time.perf_counter() - t - mining_seconds
    seconds["mining"] = mining_seconds
    final = ranking_metrics(net, heldout)
    if not history or history[-1]["step"] != step:
        history.append({"step": step, "seconds": time.perf_counter() - t, **final})
    return TrainResult(net, recipe, step, seconds, final, history, mined)


def card(result: TrainResult, extra: dict | None = None) -> dict:
    """The JSON card of trained weights: what made them and how they score on the held-out pairs."""
    r = result.recipe
    return {
        "name": "facefit perceptual shape critic",
        "what": "scores how well a grey shaded render of a face geometry (fixed light, face skin only, noise "
                "background) agrees with the photo in the fitting crop; higher is better",
        "licence": LICENCE,
        "facefit": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seeds": {"training_photos": r.seed, "heldout_photos": r.seed + 1, "torch_and_sampling": r.seed,
                  "reserved": [RESERVED_SEEDS.start, RESERVED_SEEDS.stop - 1],
                  "benchmark_seeds_avoided": [0, 1, 2]},
        "data": {"photos": "fitter.synth.cases.sample_case(model, index, seed, size=512, appearance='wild') + "
                           "render_case", "training_photos": r.photos, "heldout_photos": r.heldout_photos,
                 "negatives": dict(r.mixture), "mined": result.mined,
                 "grey_render": "face-skin triangles of the narrow_face region, SH_GREY light, albedo 0.8, seeded uniform noise background"},
        "recipe": r.as_dict(),
        "parameters": parameter_count(result.net),
        "steps_run": result.steps,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "heldout": result.heldout,
        "history": result.history,
        **(extra or {}),
    }


def _phase(progress: TrainProgress | None, name: str):
    return None if progress is None else (lambda done, total: progress(name, done, total, {}))


__all__ = ["EVAL_SEED", "RESERVED_SEEDS", "Recipe", "TrainResult", "card", "ranking_metrics", "train"]

"""``facefit critic train`` and ``facefit critic eval``: the critic's training and its release gate, with what
needs the fitter (which the critic layer below cannot call): the fitter's own wrong answers and geometry found
by descending the critic from the truth, both as training negatives and as measurements.

The eval (``critic.json``) reports, on pool photos of a seed the critic never trained on:
- ``ranking_accuracy``: how often the truth outscores a negative on the same photo, per kind (random
  identity/expression, landmark-preserving, pose);
- ``auc``: the pooled ROC AUC of truth scores against negative scores (all kinds, all photos);
- ``drift_from_truth_mm_median``: the median Procrustes error reached by descending the critic and the
  priors from the true geometry with the critic stage's own settings (free parameters, rates, iterations,
  weights) — where a fit that reached the truth would be pushed by the critic;
- ``exploited_fraction``: the share of faces fitted with the preset (through the real pipeline: detector,
  part masks, every stage) whose fit the critic scores above the true geometry.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..common.files import write_json, write_npz
from ..critic.align import CropJitter
from ..critic.negatives import NegativeSampler
from ..critic.network import CriticNet
from ..critic.pairs import heldout_pairs
from ..critic.pool import Geometry, PoolPhoto, default_cache_dir, load_pool, photo_path
from ..critic.train import EVAL_SEED, Recipe, card, ranking_metrics, train
from ..critic.weights import SHIPPED, load_critic, save_weights
from ..energy.base import TermContext, registered_terms
from ..energy.critic import critic_term
from ..evidence import Evidence
from ..io import LoadedImage
from ..model import load_ict
from ..model.morphable import MorphableModel
from ..observe import observe_image, segment_faces
from ..observe.types import FaceObservation
from ..optimize.fit import fit_face, uses_term
from ..optimize.presets import load_preset
from ..optimize.result import FaceFit
from ..optimize.schedule import run_stage
from ..scene import Scene
from ..state import FitState

EVAL_KINDS = ("random", "landmark_preserving", "pose")  # critic.json's ranking_accuracy keys
EVAL_PER_KIND = 2  # negatives of each kind per eval photo

# Called as progress(task, done, total, info).
Progress = Callable[[str, int, int, dict], None]


# -- geometry <-> fitter state ------------------------------------------------------------------------------
def truth_observation(photo: PoolPhoto) -> FaceObservation:
    """A detection that is the truth: the true landmark points (the crop a perfect detector would give)."""
    lm = photo.landmarks.astype(np.float32)
    return FaceObservation(landmarks=lm, landmark_format="mediapipe478", bbox=np.r_[lm.min(0), lm.max(0)])


def state_of(model: MorphableModel, g: Geometry, image_size: tuple[int, int]) -> FitState:
    state = FitState.single(model.num_identity, model.num_expression, image_size, g.focal, device=model.device)
    state.identity = torch.as_tensor(g.identity, dtype=torch.float32, device=model.device).clone()
    state.expression = torch.as_tensor(g.expression, dtype=torch.float32, device=model.device)[None].clone()
    state.rotation = torch.as_tensor(g.rotation, dtype=torch.float32, device=model.device)[None].clone()
    state.translation = torch.as_tensor(g.translation, dtype=torch.float32, device=model.device)[None].clone()
    return state


def geometry_of(state: FitState) -> Geometry:
    return Geometry(state.identity.detach().cpu().numpy().astype(np.float32),
                    state.expression[0].detach().cpu().numpy().astype(np.float32),
                    state.rotation[0].detach().cpu().numpy().astype(np.float32),
                    state.translation[0].detach().cpu().numpy().astype(np.float32), float(state.focal()[0]))


def critic_stage(preset: dict) -> dict:
    """The first stage of ``preset`` that weighs the critic."""
    for stage in preset["stages"]:
        if float(stage["weights"].get("critic", 0.0)) > 0:
            return stage
    raise ValueError(f"preset {preset.get('preset')!r} has no stage that weighs the critic; the drift and the "
                     "descent miner use that stage's settings")


# -- descending the critic from the truth ------------------------------------------------------------------
def descend_from_truth(model: MorphableModel, photo: PoolPhoto, net: CriticNet, preset: dict,
                       card_data: dict | None = None) -> Geometry:
    """Where the critic stage's critic and prior terms (its free parameters, rates, iterations and weights)
    take the true geometry of ``photo``."""
    stage = critic_stage(preset)
    weights = {k: float(v) for k, v in stage["weights"].items() if k == "critic" or k.endswith("_prior")}
    evidence = Evidence.single(truth_observation(photo), photo.image_size, photo.image.astype(np.float32) / 255.0)
    ctx = TermContext(model, evidence, preset, [photo.truth.focal])
    specs = registered_terms()
    terms = {name: specs[name].build(ctx) for name in weights if name != "critic"}
    terms["critic"] = critic_term(ctx, net, card_data)
    state = state_of(model, photo.truth, photo.image_size)
    for term in terms.values():
        term.configure(stage)
        term.initialise(Scene(model, state))
    run_stage(model, state, dict(stage, weights=weights), terms, preset["optimizer"])
    return geometry_of(state)


def critic_scores(model: MorphableModel, net: CriticNet, evidence: Evidence, preset: dict,
                  states: list[FitState], card_data: dict | None = None) -> list[float]:
    """The critic's score of each state's geometry for one photo's evidence (the fit's own crop)."""
    term = critic_term(TermContext(model, evidence, preset, []), net, card_data)
    with torch.no_grad():
        return [float(term.score(Scene(model, s))) for s in states]


# -- fitting pool photos through the real pipeline ---------------------------------------------------------
def fit_photo(model: MorphableModel, photo: PoolPhoto, preset: dict) -> FaceFit | None:
    """Detect, segment and fit ``photo`` as ``facefit fit`` would (None when no detection overlaps the face)."""
    image = LoadedImage.from_array(photo.image, path=f"<critic pool {photo.seed}:{photo.index}>")
    obs = observe_image(image, cache=False)
    face = matching_face(obs.faces, photo.landmarks)
    if face is None:
        return None
    masks = None
    if uses_term(preset, "prdl"):
        masks = segment_faces(image, [face], backend=preset["segmentation"]["backend"], cache=False)[0]
    return fit_face(model, face, photo.image_size, preset, masks=masks, photo=image.rgb_float)


MIN_CENTRE_DISTANCE = 0.25  # a detection is the face when its box centre is within this share of the box side


def matching_face(faces: list[FaceObservation], landmarks: np.ndarray) -> FaceObservation | None:
    """The detection whose box centre is nearest the true landmarks' centre (if near enough)."""
    centre, side = landmarks.mean(0), float(np.ptp(landmarks, 0).max())
    best = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - centre), default=None)
    if best is None or np.linalg.norm(best.landmarks.mean(0) - centre) > MIN_CENTRE_DISTANCE * side:
        return None
    return best


def cached_fit(model: MorphableModel, photo: PoolPhoto, preset: dict, cache_dir: Path | None) -> Geometry | None:
    """The ``preset`` fit of a pool photo, kept beside the photo in the pool cache (fits are deterministic)."""
    path = photo_path(cache_dir, photo.seed, photo.index) if cache_dir else None
    if path is not None:
        path = path.with_name(f"{path.stem}.fit-{preset['preset']}.npz")
        if path.exists():
            with np.load(path) as d:
                if not bool(d["detected"]):
                    return None
                return Geometry(d["identity"], d["expression"], d["rotation"], d["translation"], float(d["focal"]))
    fit = fit_photo(model, photo, preset)
    g = geometry_of(fit.state) if fit is not None else None
    if path is not None:
        if g is None:
            write_npz(path, detected=np.bool_(False))
        else:
            write_npz(path, detected=np.bool_(True), identity=g.identity, expression=g.expression,
                      rotation=g.rotation, translation=g.translation, focal=np.float64(g.focal))
    return g


# -- miners (training negatives that need the fitter) -----------------------------------------------------
class FitMiner:
    """The fitter's own wrong answers: fits of the first pool photos with a preset (``fast`` in the recipe), once
    (they do not depend on the critic)."""

    name = "fits"

    def __init__(self, model: MorphableModel, photos: int, preset: dict, cache_dir: Path | None,
                 progress: Progress | None = None):
        self.model = model
        self.photos = photos
        self.preset = preset
        self.cache_dir = cache_dir
        self.progress = progress
        self.done = False

    def mine(self, critic: CriticNet, photos: list[PoolPhoto], rng: np.random.Generator) -> list[tuple[int, Geometry]]:
        if self.done:
            return []
        self.done = True
        out = []
        count = min(self.photos, len(photos))
        for k in range(count):
            g = cached_fit(self.model, photos[k], self.preset, self.cache_dir)
            if g is not None:
                out.append((k, g))
            if self.progress:
                self.progress(f"mine:{self.name}", k + 1, count, {})
        return out


class DescentMiner:
    """Adversarial negatives: where descending the current critic (with the priors, the critic stage's
    settings) takes the truth of randomly chosen pool photos."""

    name = "descent"

    def __init__(self, model: MorphableModel, photos: int, preset: dict, progress: Progress | None = None):
        self.model = model
        self.photos = photos
        self.preset = preset
        self.progress = progress

    def mine(self, critic: CriticNet, photos: list[PoolPhoto], rng: np.random.Generator) -> list[tuple[int, Geometry]]:
        chosen = rng.choice(len(photos), size=min(self.photos, len(photos)), replace=False)
        out = []
        for k, position in enumerate(chosen):
            out.append((int(position), descend_from_truth(self.model, photos[position], critic, self.preset)))
            if self.progress:
                self.progress(f"mine:{self.name}", k + 1, len(chosen), {})
        return out


class ExploitMiner:
    """The fitter's answers that exploit the critic being trained: fits of randomly chosen pool photos with a
    preset that weighs the critic (``critic`` in the recipe), the critic's weights being the current network's
    (written to ``work_dir`` for the round). These are what `facefit critic eval`'s exploited fraction counts:
    fits the critic scores above their own truth."""

    name = "exploits"

    def __init__(self, model: MorphableModel, photos: int, preset: dict, work_dir: Path,
                 progress: Progress | None = None):
        self.model = model
        self.photos = photos
        self.preset = preset
        self.work_dir = Path(work_dir)
        self.progress = progress
        self.rounds = 0

    def mine(self, critic: CriticNet, photos: list[PoolPhoto], rng: np.random.Generator) -> list[tuple[int, Geometry]]:
        self.rounds += 1
        weights = self.work_dir / f"critic_round{self.rounds}.npz"
        save_weights(weights, critic, {"what": "the critic being trained, at an exploit-mining round"})
        preset = dict(self.preset, critic=dict(self.preset["critic"], weights=str(weights)))
        chosen = rng.choice(len(photos), size=min(self.photos, len(photos)), replace=False)
        out = []
        for k, position in enumerate(chosen):
            fit = fit_photo(self.model, photos[position], preset)
            if fit is not None:
                out.append((int(position), geometry_of(fit.state)))
            if self.progress:
                self.progress(f"mine:{self.name}", k + 1, len(chosen), {})
        return out


# -- the commands -----------------------------------------------------------------------------------------
def training_seeds(card_data: dict) -> set[int]:
    """The seeds of sample_case a critic's card says it trained or was held out on."""
    seeds = card_data.get("seeds", {})
    return {int(seeds[k]) for k in ("training_photos", "heldout_photos") if k in seeds}


def run_train(out_dir: Path, recipe: Recipe, minutes: float | None = None, cache_dir: Path | None = None,
              progress: Progress | None = None) -> dict:
    """Train a critic and write ``critic_shape.npz`` and its card ``critic_shape.json`` into ``out_dir``."""
    model = load_ict()
    cache_dir = cache_dir or default_cache_dir()
    miners = []
    fits, descent = recipe.mining.get("fits", {}), recipe.mining.get("descent", {})
    if fits.get("photos"):
        miners.append(FitMiner(model, int(fits["photos"]), load_preset(fits["preset"]), cache_dir, progress))
    if descent.get("photos"):
        miners.append(DescentMiner(model, int(descent["photos"]), load_preset(descent["preset"]), progress))
    exploits = recipe.mining.get("exploits", {})
    if exploits.get("photos"):
        miners.append(ExploitMiner(model, int(exploits["photos"]), load_preset(exploits["preset"]),
                                   Path(out_dir) / "mining", progress))
    result = train(model, recipe, cache_dir, miners, minutes, progress)
    return save_weights(Path(out_dir) / SHIPPED, result.net, card(result))


def run_eval(out_dir: Path, count: int = 200, seed: int = EVAL_SEED, weights: str = SHIPPED,
             preset_name: str = "critic", fits: int | None = None, descents: int | None = None,
             cache_dir: Path | None = None, progress: Progress | None = None) -> dict:
    """Measure a critic on ``count`` pool photos of ``seed``; writes ``critic.json`` (the gate's figures) and
    ``critic_cases.json`` (per-photo rows and the settings)."""
    model = load_ict()
    net, card_data = load_critic(weights)
    preset = load_preset(preset_name)
    preset["critic"] = dict(preset["critic"], weights=str(weights))
    recipe = card_data.get("recipe", {})
    margin = float(recipe.get("crop_margin", preset["crop"]["margin"]))
    jitter = CropJitter(**recipe["jitter"]) if "jitter" in recipe else CropJitter()
    t0 = time.perf_counter()
    photos = load_pool(model, seed, count, cache_dir, _phase(progress, "photos"))
    pairs = heldout_pairs(model, photos, EVAL_KINDS, EVAL_PER_KIND, net.arch.size, margin, jitter, seed)
    ranking = ranking_metrics(net, pairs)
    sampler = NegativeSampler(model)
    rows = [{"seed": p.seed, "index": p.index} for p in photos]
    drift = []
    n_descents = count if descents is None else min(descents, count)
    for k in range(n_descents):
        g = descend_from_truth(model, photos[k], net, preset, card_data)
        rows[k]["drift_mm"] = sampler.shape_error_mm(g, photos[k].truth)
        drift.append(rows[k]["drift_mm"])
        if progress:
            progress("descents from the truth", k + 1, n_descents, {})
    exploited = []
    n_fits = count if fits is None else min(fits, count)
    for k in range(n_fits):
        p = photos[k]
        fit = fit_photo(model, p, preset)
        if fit is not None:
            fitted, truth = critic_scores(model, net, fit.evidence, preset,
                                          [fit.state, state_of(model, p.truth, p.image_size)], card_data)
            rows[k].update(fit_score=fitted, truth_score=truth, exploited=fitted > truth,
                           fit_error_mm=sampler.shape_error_mm(geometry_of(fit.state), p.truth))
            exploited.append(fitted > truth)
        if progress:
            progress(f"fits ({preset_name})", k + 1, n_fits, {})
    result = {"ranking_accuracy": {k: ranking["accuracy"][k] for k in EVAL_KINDS},
              "auc": ranking["auc"],
              "drift_from_truth_mm_median": float(np.median(drift)) if drift else None,
              "exploited_fraction": float(np.mean(exploited)) if exploited else None}  # None: not measured
    write_json(Path(out_dir) / "critic.json", result)
    write_json(Path(out_dir) / "critic_cases.json", {
        "settings": {"n": count, "seed": seed, "weights": str(weights), "sha256": card_data.get("sha256"),
                     "fit_preset": preset_name, "fits": n_fits, "descents": n_descents,
                     "descent_stage": critic_stage(preset), "negatives_per_kind": EVAL_PER_KIND,
                     "seconds": time.perf_counter() - t0},
        "ranking": ranking, "cases": rows})
    return result


def _phase(progress: Progress | None, name: str):
    return None if progress is None else (lambda done, total: progress(name, done, total, {}))

"""The fit driver: evidence -> initial state -> the preset's stages -> a FaceFit with metrics.

Terms are found by name in the energy registry (fitter.energy.base): the driver builds every term some stage
weighs, calls each term's ``configure`` before the stages that weigh it and ``initialise`` before the first
one, and runs the stages (fitter.optimize.schedule). A term whose evidence is missing (no photo, no masks) or
that cannot be built for this model is left out with a warning in the report.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..camera import focal_from_exif, focal_from_fov
from ..energy.base import TermContext, TermUnavailable, registered_terms
from ..energy.landmarks import landmark_embedding
from ..evidence import Evidence
from ..model.morphable import MorphableModel
from ..observe.segmentation import PartMasks
from ..observe.types import FaceObservation
from ..scene import Scene
from ..state import RIG_PARAMETERS, FitState
from .init import InitSettings, initialise
from .presets import validate
from .quality import GEOMETRY, Guard, measure, part_ious, restore_geometry, weak_masks
from .result import FaceFit
from .schedule import run_stage
from .uncertainty import focal_log_std


def focal_guess(image_size: tuple[int, int], preset: dict, exif_focal_35mm: float | None = None) -> float:
    """The preset's known focal length (``camera.focal_px``), else EXIF's, else the default field of view."""
    h, w = image_size
    known = float(preset["camera"]["focal_px"])
    if known > 0:
        return known
    from_exif = focal_from_exif(exif_focal_35mm, w, h)
    if from_exif:
        return from_exif
    return focal_from_fov(float(preset["camera"]["focal_guess_fov_deg"]), max(h, w))


def stage_weight(stage: dict, name: str) -> float:
    return float(stage["weights"].get(name, 0.0))


def uses_term(preset: dict, name: str) -> bool:
    """Whether any stage of the preset weighs the term ``name``."""
    return any(stage_weight(stage, name) != 0.0 for stage in preset["stages"])


def build_terms(ctx: TermContext) -> tuple[dict, list[str]]:
    """The terms the preset's stages weigh, by name, and a warning for each one left out."""
    specs = registered_terms()
    wanted = sorted({name for stage in ctx.preset["stages"] for name in stage["weights"] if uses_term(ctx.preset, name)})
    terms, warnings = {}, []
    for name in wanted:
        spec = specs[name]  # names were checked against the registry when the preset was loaded
        missing = [what for what in spec.needs if not ctx.evidence.has(what)]
        if missing:
            warnings.append(f"term {name!r} needs {' and '.join(missing)}, which this input lacks; its stages "
                            "run without it")
            continue
        try:
            terms[name] = spec.build(ctx)
        except TermUnavailable as exc:
            warnings.append(f"term {name!r} left out: {exc}")
    return terms, warnings


def initial_state(model: MorphableModel, evidence: Evidence, preset: dict, focal: float) -> FitState:
    """Closed-form start of every frame (pose and expression per frame; identity averaged over frames)."""
    embedding = landmark_embedding(model, evidence.landmark_format)
    settings = InitSettings(**preset["init"], sigma=float(preset["landmarks"]["sigma"]))
    states = [initialise(model, embedding, f.face.landmarks, f.face.landmark_weights, f.image_size, focal,
                         blendshapes=f.face.blendshapes, transform=f.face.transform, settings=settings)
              for f in evidence.frames]
    state = states[0]
    if len(states) > 1:
        state.identity = torch.stack([s.identity for s in states]).mean(0)
        state.expression = torch.cat([s.expression for s in states])
        state.rotation = torch.cat([s.rotation for s in states])
        state.translation = torch.cat([s.translation for s in states])
        state.frame_view = torch.zeros(len(states), dtype=torch.int64, device=state.device)
    return state


def size_displacement(state: FitState, stage: dict) -> None:
    """Create or resample the UV displacement map at the stage's ``displacement_resolution``."""
    size = stage.get("displacement_resolution")
    if not size:
        return
    size = int(size)
    if state.displacement is None:
        state.displacement = torch.zeros(1, 1, size, size, device=state.device)
    elif state.displacement.shape[-1] != size:
        state.displacement = torch.nn.functional.interpolate(
            state.displacement.detach(), size=(size, size), mode="bilinear", align_corners=False)


def fit_subject(model: MorphableModel, evidence: Evidence, preset: dict, initial: FitState | None = None,
                focal_guesses: list[float] | None = None) -> FaceFit:
    """Fit the model to a subject's evidence with the preset's stages.

    ``preset``: a merged preset (fitter.optimize.presets.load_preset, perhaps edited); it is checked first, so a
    caller's typo is one PresetError naming the key, not a KeyError from inside a stage. ``initial``: start from
    this state (e.g. a video's previous frames, a multi-view rig's cameras) instead of the closed-form
    initialisation; ``focal_guesses`` (per view) then centre the focal prior (default: the initial state's focal
    lengths)."""
    validate(preset, "preset")
    return fit_stages(model, evidence, preset, initial, focal_guesses)


def fit_stages(model: MorphableModel, evidence: Evidence, preset: dict, initial: FitState | None = None,
               focal_guesses: list[float] | None = None, focal_std: bool = True) -> FaceFit:
    """:func:`fit_subject` without checking the preset: for phase presets the subject schedule derives from a
    checked one (fitter.optimize.subject), whose stages carry keys of its own (``view_weights``). The focal
    length's uncertainty is taken when the stage [camera] names ends (at its optimum, so it does not depend on what
    later stages do); ``focal_std`` False leaves it NaN (the subject phases do not report it, and a clip's keyframe
    fit made its Hessian the peak of the process's memory)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    first = evidence.frames[0]
    if initial is None:
        focal = focal_guess(first.image_size, preset, first.exif_focal_35mm)
        state = initial_state(model, evidence, preset, focal)
        guesses = [focal]
    else:
        state = initial
        guesses = list(focal_guesses) if focal_guesses else state.log_focal.exp().tolist()
        focal = guesses[0]
    timings["init"] = time.perf_counter() - start

    t = time.perf_counter()
    ctx = TermContext(model, evidence, preset, guesses)
    terms, warnings = build_terms(ctx)
    timings["targets"] = time.perf_counter() - t
    crop = first.crop(preset["crop"]["size"], preset["crop"]["margin"])
    fit = FaceFit(state=state, evidence=evidence, focal_guess=focal, crop=crop, warnings=warnings)
    masks = first.masks
    if masks is not None:
        fit.parts = {"source": masks.source, "weak": masks.weak, "warnings": list(masks.warnings)}
    has_labels = "parts" in model.topology.vertex_labels
    lm = terms.get("landmarks") or _landmark_term(model, evidence, preset)
    crops = [f.crop(preset["crop"]["size"], preset["crop"]["margin"]) for f in evidence.frames]
    guard = Guard.from_preset(preset)
    weak = weak_masks(evidence)
    t = time.perf_counter()
    before = measure(model, state, evidence, lm, crops, {})
    fit.quality["init"] = before
    best_iou = before["iou_mean"]
    initialised: set[str] = set()
    for stage in preset["stages"]:
        if "prdl" in terms and "iou_before_prdl" not in fit.parts and stage_weight(stage, "prdl"):
            fit.parts["iou_before_prdl"] = part_ious(model, Scene(model, state), masks, crop)
        size_displacement(state, stage)
        active = {name: term for name, term in terms.items() if stage_weight(stage, name)}
        for name, term in active.items():
            term.configure(stage)
            if name not in initialised:
                term.initialise(Scene(model, state))
                initialised.add(name)
        snapshot = {name: getattr(state, name).detach().clone() for name in GEOMETRY + RIG_PARAMETERS
                    if getattr(state, name) is not None}  # a rejected stage puts a rig's cameras back too
        log = run_stage(model, state, with_turn_weights(stage, preset), terms, preset["optimizer"])
        fit.stages.append(log)
        timings[f"stage_{stage['name']}"] = log.seconds
        after = measure(model, state, evidence, lm, crops, active)
        verdict = guard.check(stage, before, after, best_iou, weak)
        if verdict and verdict.revert:  # the stage moved the face away from the image evidence: keep the earlier result
            restore_geometry(state, snapshot)
            after = dict(measure(model, state, evidence, lm, crops, {}), reverted=verdict.reason)
            fit.warnings.append(f"stage {stage['name']!r} moved the fit away from the image evidence "
                                f"({verdict.reason}); kept the earlier stage's geometry")
        elif verdict:  # an IoU fall on masks drawn from the landmarks: said (once a fit), not acted on
            after = dict(after, flagged=verdict.reason)
            if not any("flagged" in q for q in fit.quality.values()):
                fit.warnings.append(f"stage {stage['name']!r}: {verdict.reason} on part masks drawn from the "
                                    "landmarks (no parser weights); kept the stage, the face is flagged suspect")
        if verdict and fit.suspect is None:
            fit.suspect = verdict.suspect(stage["name"])
        fit.quality[stage["name"]] = after
        if focal_std and stage["name"] == preset["camera"]["uncertainty_stage"]:  # at that stage's own optimum
            t_std = time.perf_counter()
            fit.focal_log_std, fit.focal_std_source = focal_uncertainty(model, state, terms, preset, stage)
            timings["focal_uncertainty"] = time.perf_counter() - t_std
        if not guard.judges(stage):  # a stage the guard may not reject is where the evidence starts
            best_iou = after["iou_mean"]
        elif after["iou_mean"] is not None:
            best_iou = after["iou_mean"] if best_iou is None else max(best_iou, after["iou_mean"])
        before = after
    timings["fit"] = time.perf_counter() - t

    with torch.no_grad():
        scene = Scene(model, state)
        fit.rmse_px_frames = [float(v) for v in lm.rmse_px(scene)]
        fit.rmse_px = fit.rmse_px_frames[0]
        points, _ = lm.surface_points(scene)
        fit.landmarks_fitted = scene.project(points)[0][0].cpu().numpy()
    fit.nme = fit.rmse_px / max(first.face.inter_ocular, 1e-6)
    if masks is not None and has_labels:
        t = time.perf_counter()
        fit.parts["iou"] = part_ious(model, Scene(model, state), masks, crop)
        timings["part_iou"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    fit.timings = timings
    return fit


def with_turn_weights(stage: dict, preset: dict) -> dict:
    """The stage with the preset's ``[turn_noise]`` (fitter.optimize.views.turn_weights) for the schedule; as it is
    when that is off (0 degrees or no terms)."""
    cfg = preset.get("turn_noise") or {}
    if not float(cfg.get("degrees", 0.0)) or not cfg.get("terms"):
        return stage
    return dict(stage, turn_weights={"degrees": float(cfg["degrees"]), "power": float(cfg["power"]),
                                     "terms": list(cfg["terms"])})


def focal_uncertainty(model: MorphableModel, state: FitState, terms: dict, preset: dict,
                      stage: dict) -> tuple[float, str]:
    """The standard deviation of log(focal) and where it comes from: ``"curvature"``, the energy of ``stage`` (the
    one [camera] names) at ``state``, calibrated by [camera] focal_std_calibration; ``"prior"``, the focal prior's
    own width where that curvature is not positive (the image says nothing the prior does not); NaN and ``""``
    when the stage does not free the focal length."""
    cfg = preset["camera"]
    if "log_focal" not in stage["free"]:
        return float("nan"), ""
    weights = {k: float(v) for k, v in stage["weights"].items() if float(v) and k in terms}
    std = focal_log_std(model, state, terms, weights, float(cfg["focal_std_calibration"]))
    if math.isfinite(std):
        return std, "curvature"
    if "focal_prior" in weights:  # weight w on ((log f - log f0) / sigma)^2: a Gaussian of width sigma / sqrt(w)
        return float(preset["focal_prior"]["log_sigma"]) / math.sqrt(weights["focal_prior"]), "prior"
    return float("nan"), ""


def _landmark_term(model: MorphableModel, evidence: Evidence, preset: dict):
    """A landmark term for measuring the fit when no stage weighs one (the same settings)."""
    term = registered_terms()["landmarks"].build(TermContext(model, evidence, preset, []))
    return term


def fit_face(model: MorphableModel, face: FaceObservation, image_size: tuple[int, int], preset: dict,
             exif_focal_35mm: float | None = None, masks: PartMasks | None = None,
             photo: np.ndarray | None = None) -> FaceFit:
    """Fit one observed face of one photo.

    PRDL joins when ``masks`` (part segmentation) are given; the photometric and displacement stages when
    ``photo`` (the full image, float sRGB in [0, 1]) is.
    """
    return fit_subject(model, Evidence.single(face, image_size, photo, masks, exif_focal_35mm), preset)

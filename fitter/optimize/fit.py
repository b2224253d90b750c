"""Fitting one face: observations -> initial state -> the preset's stages -> a FaceFit with metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import focal_from_exif, focal_from_fov
from ..crop import FitCrop
from ..energy.landmarks import LandmarkTargets, LandmarkTerm, landmark_embedding
from ..energy.priors import ExpressionPrior, FocalPrior, IdentityPrior
from .init import InitSettings, initialise
from ..model.contour import contour_candidates
from ..model.morphable import MorphableModel
from ..observe.segmentation import PartMasks
from ..observe.types import FaceObservation
from .schedule import StageLog, run_stage
from ..scene import Scene
from ..state import FitState


@dataclass
class FaceFit:
    state: FitState
    observation: FaceObservation
    image_size: tuple[int, int]
    stages: list[StageLog] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rmse_px: float = float("nan")
    nme: float = float("nan")
    focal_guess: float = float("nan")
    landmarks_fitted: np.ndarray | None = None  # (N, 2) projected model landmarks
    crop: FitCrop | None = None
    parts: dict = field(default_factory=dict)  # segmentation source and per-part IoU before/after PRDL

    def vertices(self, model: MorphableModel) -> torch.Tensor:
        """Fitted vertices (V, 3) in the model frame (first frame)."""
        with torch.no_grad():
            return Scene(model, self.state).vertices()[0]


def focal_guess(image_size: tuple[int, int], preset: dict, exif_focal_35mm: float | None = None) -> float:
    """The preset's known focal length (``camera.focal_px``), else EXIF's, else the default field of view."""
    h, w = image_size
    known = float(preset["camera"].get("focal_px", 0) or 0)
    if known > 0:
        return known
    from_exif = focal_from_exif(exif_focal_35mm, w, h)
    if from_exif:
        return from_exif
    return focal_from_fov(float(preset["camera"]["focal_guess_fov_deg"]), max(h, w))


def uses_term(preset: dict, name: str) -> bool:
    """Whether any stage of the preset weighs the term ``name``."""
    return any(float(stage["weights"].get(name, 0.0)) != 0.0 for stage in preset["stages"])


def build_terms(model: MorphableModel, targets: LandmarkTargets, preset: dict, focal: float,
                masks: PartMasks | None = None, crop: FitCrop | None = None) -> dict:
    """Energy terms by name for the stages to weigh (a stage skips any it names that is absent)."""
    lm = preset["landmarks"]
    candidates = None
    if lm.get("contour", "slide") == "slide":
        candidates = contour_candidates(model, targets.landmark_format)
    terms = {}
    if masks is not None and crop is not None and uses_term(preset, "prdl"):
        from ..energy.prdl import PRDLTerm, build_targets

        cfg = preset["prdl"]
        prdl_targets = build_targets(masks, crop, grid=int(cfg["grid"]), skin_points=int(cfg["skin_points"]),
                                     part_points=int(cfg["part_points"]), soft=float(cfg["soft"]),
                                     device=model.device)
        terms["prdl"] = PRDLTerm(model, prdl_targets, dict(cfg.get("part_weights", {})), sigma=float(cfg["sigma"]),
                                 soft=float(cfg["soft"]), max_points=int(cfg["max_points"]),
                                 raster_size=int(cfg["raster_size"]))
    return terms | {
        "landmarks": LandmarkTerm(model, targets, sigma=float(lm["sigma"]), robust_delta=float(lm["robust_delta"]),
                                  visibility=bool(lm["visibility"]), contour_candidates=candidates,
                                  reliability=bool(lm.get("reliability", True))),
        "identity_prior": IdentityPrior(),
        "expression_prior": ExpressionPrior(float(preset["priors"]["expression_sigma"])),
        "focal_prior": FocalPrior(focal, float(preset["camera"]["focal_log_sigma"])),
    }


def build_image_terms(model: MorphableModel, preset: dict, photo: np.ndarray | None, masks: PartMasks | None,
                      face: FaceObservation, weights: np.ndarray) -> dict:
    """Photometric and detail terms (need the photo); {} when no stage weighs them or there is no photo."""
    if photo is None or not any(uses_term(preset, t) for t in ("photometric", "detail", "displacement_prior")):
        return {}
    from ..energy.detail import DetailTerm, DisplacementPrior
    from ..energy.photometric import AlbedoPrior, LightPrior, PhotometricTerm, PhotoTarget
    from ..model.albedo import albedo_basis

    cfg = preset["photometric"]
    crop = FitCrop.around(face.landmarks[weights > 0], int(cfg["crop_size"]), float(preset["crop"]["margin"]))
    basis = albedo_basis(model, int(cfg["albedo_modes"]))
    target = PhotoTarget.from_photo(photo, crop, masks, tuple(cfg.get("parts", ("skin", "nose"))))
    prior = preset["albedo"]
    photometric = PhotometricTerm(model, target, basis, sigma=float(cfg["sigma"]),
                                  robust_delta=float(cfg["robust_delta"]), backend=str(preset.get("renderer", "auto")))
    disp = preset["displacement"]
    return {
        "photometric": photometric,
        "detail": DetailTerm(model, target, basis, photometric.face_triangles, backend=photometric.backend,
                             **{k: float(v) for k, v in disp.get("detail", {}).items()}),
        "albedo_prior": AlbedoPrior(basis, float(prior["smoothness"]), float(prior["symmetry"]),
                                    tuple(prior["mean_colour"]), float(prior["mean_sigma"])),
        "light_prior": LightPrior(float(preset["lighting"]["sigma"])),
        "displacement_prior": DisplacementPrior(**{k: float(v) for k, v in disp.items() if k != "detail"}),
    }


def prepare_stage(model: MorphableModel, state: FitState, stage: dict, terms: dict) -> None:
    """Per-stage set-up the preset asks for: render resolution, lighting start, displacement map size."""
    photo = terms.get("photometric")
    if photo is None:
        return
    if "resolution" in stage:
        photo.set_resolution(int(stage["resolution"]))
        if "detail" in terms:
            terms["detail"].set_resolution(int(stage["resolution"]))
    photo.band = float(stage.get("detail_band", 0.0))
    if float(stage["weights"].get("photometric", 0)) and (state.sh is None or state.albedo is None):
        from ..energy.photometric import initial_lighting

        state.albedo, state.sh = initial_lighting(photo, Scene(model, state))
    size = stage.get("displacement_resolution")
    if size:
        size = int(size)
        if state.displacement is None:
            state.displacement = torch.zeros(1, 1, size, size, device=state.device)
        elif state.displacement.shape[-1] != size:
            state.displacement = torch.nn.functional.interpolate(
                state.displacement.detach(), size=(size, size), mode="bilinear", align_corners=False)


def fit_face(model: MorphableModel, face: FaceObservation, image_size: tuple[int, int], preset: dict,
             exif_focal_35mm: float | None = None, masks: PartMasks | None = None,
             photo: np.ndarray | None = None) -> FaceFit:
    """Fit the model to one observed face with the preset's stages.

    PRDL joins when ``masks`` (part segmentation) are given; the photometric and displacement stages when
    ``photo`` (the full image, float sRGB in [0, 1]) is.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    focal = focal_guess(image_size, preset, exif_focal_35mm)
    embedding = landmark_embedding(model, face.landmark_format)
    weights = face.landmark_weights
    init_cfg = preset.get("init", {})
    settings = InitSettings(**{k: v for k, v in init_cfg.items() if k in InitSettings.__dataclass_fields__})
    settings.sigma = float(preset["landmarks"]["sigma"])
    state = initialise(model, embedding, face.landmarks, weights, image_size, focal,
                       blendshapes=face.blendshapes, transform=face.transform, settings=settings)
    timings["init"] = time.perf_counter() - start

    dev = model.device
    targets = LandmarkTargets(
        points=torch.as_tensor(face.landmarks, dtype=torch.float32, device=dev)[None],
        weights=torch.as_tensor(weights, dtype=torch.float32, device=dev)[None],
        landmark_format=face.landmark_format,
    )
    crop = FitCrop.around(face.landmarks[weights > 0], int(preset["crop"]["size"]), float(preset["crop"]["margin"]))
    t = time.perf_counter()
    terms = build_terms(model, targets, preset, focal, masks, crop)
    terms.update(build_image_terms(model, preset, photo, masks, face, weights))
    timings["targets"] = time.perf_counter() - t
    fit = FaceFit(state=state, observation=face, image_size=image_size, focal_guess=focal, crop=crop)
    if masks is not None:
        fit.parts = {"source": masks.source, "weak": masks.weak, "warnings": list(masks.warnings)}
    t = time.perf_counter()
    for stage in preset["stages"]:
        if "prdl" in terms and "iou_before_prdl" not in fit.parts and float(stage["weights"].get("prdl", 0)):
            fit.parts["iou_before_prdl"] = _ious(model, state, masks, crop)
        prepare_stage(model, state, stage, terms)
        log = run_stage(model, state, stage, terms)
        fit.stages.append(log)
        timings[f"stage_{stage['name']}"] = log.seconds
        for name in log.skipped_terms:
            fit.warnings.append(f"stage {stage['name']!r}: term {name!r} has no observations here; skipped")
    timings["fit"] = time.perf_counter() - t

    with torch.no_grad():
        scene = Scene(model, state)
        lm = terms["landmarks"]
        fit.rmse_px = float(lm.rmse_px(scene)[0])
        points, _ = lm.surface_points(scene)
        fit.landmarks_fitted = scene.project(points)[0][0].cpu().numpy()
    fit.nme = fit.rmse_px / max(face.inter_ocular, 1e-6)
    if masks is not None and "parts" in model.topology.vertex_labels:
        t = time.perf_counter()
        fit.parts["iou"] = _ious(model, state, masks, crop)
        timings["part_iou"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    fit.timings = timings
    return fit


def _ious(model: MorphableModel, state: FitState, masks: PartMasks, crop: FitCrop) -> dict[str, float]:
    from ..energy.prdl import part_ious

    return part_ious(model, Scene(model, state), masks, crop)

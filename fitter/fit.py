"""Fitting one face: observations -> initial state -> the preset's stages -> a FaceFit with metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .camera import focal_from_exif, focal_from_fov
from .energy.landmarks import LandmarkTargets, LandmarkTerm, landmark_embedding
from .energy.priors import ExpressionPrior, FocalPrior, IdentityPrior
from .init import InitSettings, initialise
from .model.contour import contour_candidates
from .model.morphable import MorphableModel
from .observe.types import FaceObservation
from .optimize.schedule import StageLog, run_stage
from .scene import Scene
from .state import FitState


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

    def vertices(self, model: MorphableModel) -> torch.Tensor:
        """Fitted vertices (V, 3) in the model frame (first frame)."""
        with torch.no_grad():
            return Scene(model, self.state).vertices()[0]


def focal_guess(image_size: tuple[int, int], preset: dict, exif_focal_35mm: float | None = None) -> float:
    """EXIF focal length when the photo has one, else the preset's default field of view."""
    h, w = image_size
    from_exif = focal_from_exif(exif_focal_35mm, w, h)
    if from_exif:
        return from_exif
    return focal_from_fov(float(preset["camera"]["focal_guess_fov_deg"]), max(h, w))


def build_terms(model: MorphableModel, targets: LandmarkTargets, preset: dict, focal: float) -> dict:
    """Energy terms by name for the stages to weigh (a stage skips any it names that is absent)."""
    lm = preset["landmarks"]
    candidates = None
    if lm.get("contour", "slide") == "slide":
        candidates = contour_candidates(model, targets.landmark_format)
    return {
        "landmarks": LandmarkTerm(model, targets, sigma=float(lm["sigma"]), robust_delta=float(lm["robust_delta"]),
                                  visibility=bool(lm["visibility"]), contour_candidates=candidates),
        "identity_prior": IdentityPrior(),
        "expression_prior": ExpressionPrior(float(preset["priors"]["expression_sigma"])),
        "focal_prior": FocalPrior(focal, float(preset["camera"]["focal_log_sigma"])),
    }


def fit_face(model: MorphableModel, face: FaceObservation, image_size: tuple[int, int], preset: dict,
             exif_focal_35mm: float | None = None) -> FaceFit:
    """Fit the model to one observed face with the preset's stages."""
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
    terms = build_terms(model, targets, preset, focal)
    fit = FaceFit(state=state, observation=face, image_size=image_size, focal_guess=focal)
    t = time.perf_counter()
    for stage in preset["stages"]:
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
    timings["total"] = time.perf_counter() - start
    fit.timings = timings
    return fit

"""FaceFit: the plain result of fitting one subject (its state, the evidence it was fitted to, logs, metrics)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..crop import FitCrop
from ..evidence import Evidence
from ..model.morphable import MorphableModel
from ..observe.types import FaceObservation
from ..scene import Scene
from ..state import FitState
from .schedule import StageLog


@dataclass
class FaceFit:
    state: FitState
    evidence: Evidence
    stages: list[StageLog] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rmse_px: float = float("nan")  # landmark RMSE of the first frame (pixels)
    nme: float = float("nan")  # rmse_px / inter-ocular distance
    rmse_px_frames: list[float] = field(default_factory=list)  # per frame
    focal_guess: float = float("nan")
    focal_log_std: float = float("nan")  # calibrated standard deviation of log(focal) (NaN: not estimated)
    focal_std_source: str = ""  # "curvature" (the fit's energy, calibrated), "prior" (its curvature was flat) or ""
    landmarks_fitted: np.ndarray | None = None  # (N, 2) projected model landmarks of the first frame
    crop: FitCrop | None = None  # the first frame's fitting crop
    parts: dict = field(default_factory=dict)  # segmentation source and per-part IoU before/after PRDL
    quality: dict = field(default_factory=dict)  # per stage (and "init"): NME, part IoU, term diagnostics
    suspect: dict | None = None  # {"stage", "reason", "action": "reverted" | "kept"}: the first stage the guard faulted

    @property
    def observation(self) -> FaceObservation:
        """The first frame's detected face (a single photo's only one)."""
        return self.evidence.frames[0].face

    @property
    def image_size(self) -> tuple[int, int]:
        return self.evidence.frames[0].image_size

    def vertices(self, model: MorphableModel, frame: int = 0) -> torch.Tensor:
        """Fitted vertices (V, 3) in the model frame."""
        with torch.no_grad():
            return Scene(model, self.state).vertices()[frame]

"""FitState: every quantity the fitter optimises, shaped for many frames and views from day one.

A subject shares one identity; expression, pose and lighting are per frame; cameras (focal length,
principal point, image size) are per view. A single photo is one frame seen by one view.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from .camera import axis_angle_to_matrix, intrinsics, model_to_camera, MODEL_TO_OPENCV

# Names of the tensors that stages may free for optimisation.
PARAMETER_NAMES = ("identity", "expression", "rotation", "translation", "log_focal", "sh", "albedo", "displacement")


@dataclass
class FitState:
    identity: torch.Tensor  # (K_id,) shared by the subject
    expression: torch.Tensor  # (F, K_exp)
    rotation: torch.Tensor  # (F, 3) axis-angle of the head (model frame -> camera, after MODEL_TO_OPENCV)
    translation: torch.Tensor  # (F, 3) model units (cm)
    log_focal: torch.Tensor  # (V,) log focal length in pixels, per view
    principal: torch.Tensor  # (V, 2) principal point in pixels, per view (held fixed)
    image_size: torch.Tensor  # (V, 2) int64 (height, width), per view
    frame_view: torch.Tensor  # (F,) int64 view index of each frame
    sh: torch.Tensor | None = None  # (F, 9, 3) spherical-harmonics lighting per frame
    albedo: torch.Tensor | None = None  # (K, 3) coefficients of the model's albedo basis (fitter.model.albedo)
    displacement: torch.Tensor | None = None  # (1, 1, H, W) UV displacement map (model units)
    extras: dict = field(default_factory=dict)  # non-optimised bookkeeping (e.g. focal prior)

    # -- construction ------------------------------------------------------------------------------------
    @classmethod
    def single(
        cls,
        num_identity: int,
        num_expression: int,
        image_size: tuple[int, int],
        focal: float,
        frames: int = 1,
        device: str | torch.device = "cpu",
    ) -> "FitState":
        """A subject seen in ``frames`` frames through one camera of ``image_size`` (H, W)."""
        h, w = image_size
        dev = torch.device(device)
        return cls(
            identity=torch.zeros(num_identity, device=dev),
            expression=torch.zeros(frames, num_expression, device=dev),
            rotation=torch.zeros(frames, 3, device=dev),
            translation=torch.tensor([[0.0, 0.0, 60.0]], device=dev).repeat(frames, 1),
            log_focal=torch.tensor([float(np.log(focal))], device=dev),
            principal=torch.tensor([[w / 2.0, h / 2.0]], device=dev),
            image_size=torch.tensor([[h, w]], dtype=torch.int64, device=dev),
            frame_view=torch.zeros(frames, dtype=torch.int64, device=dev),
        )

    # -- derived quantities ------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.expression.shape[0]

    @property
    def device(self) -> torch.device:
        return self.expression.device

    def focal(self) -> torch.Tensor:
        """Focal length in pixels per frame (F,)."""
        return self.log_focal.exp()[self.frame_view]

    def K(self) -> torch.Tensor:
        """Intrinsics per frame (F, 3, 3)."""
        return intrinsics(self.focal(), self.principal[self.frame_view])

    def frame_image_size(self, frame: int = 0) -> tuple[int, int]:
        h, w = self.image_size[self.frame_view[frame]].tolist()
        return int(h), int(w)

    def to_camera(self, vertices: torch.Tensor) -> torch.Tensor:
        """Model-frame vertices (F, N, 3) -> camera frame with this state's pose."""
        return model_to_camera(vertices, self.rotation, self.translation)

    def rotation_matrix(self) -> torch.Tensor:
        """Full model->camera rotation per frame (F, 3, 3), including the axis convention."""
        return axis_angle_to_matrix(self.rotation) @ MODEL_TO_OPENCV.to(self.rotation)

    # -- optimisation helpers ----------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}

    def free(self, names: list[str]) -> list[torch.Tensor]:
        """Make the named tensors leaves that require grad (and the others not); returns the freed ones."""
        freed = []
        for name, value in self.tensors().items():
            if name in ("principal", "image_size", "frame_view"):
                continue
            leaf = value.detach().clone().requires_grad_(name in names)
            setattr(self, name, leaf)
            if name in names:
                freed.append(leaf)
        unknown = set(names) - set(PARAMETER_NAMES)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; choose from {PARAMETER_NAMES}")
        return freed

    def detached(self) -> "FitState":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in values.items():
            if isinstance(v, torch.Tensor):
                values[k] = v.detach().clone()
        values["extras"] = dict(self.extras)
        return FitState(**values)

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.tensors().items()}

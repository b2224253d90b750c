"""FitState: every quantity the fitter optimises, shaped for many frames and views from day one.

A subject shares one identity; cameras (focal length, principal point, image size) are per view. A subject is
seen in F images ("frames" of the energy terms): each image is one view at one time instant. Expression and
head pose belong to the instant (shared by every view that saw it); lighting belongs to the image (each camera
sees the light from its own side). A single photo, and every frame of a single-camera video, is its own
instant seen by view 0: then ``frame_instant`` and the view extrinsics are None, and the head pose is the
model -> camera transform itself, exactly as for one photo.

A multi-view capture sets ``frame_instant`` (F,) (image -> instant) and the world -> camera extrinsics of each
view (``view_rotation``, ``view_translation``; fixed for a calibrated rig, fitted for an uncalibrated one, whose
first view is the world frame), and the head pose is then in the world frame: the model -> camera transform
of image f is the view's extrinsics composed with its instant's head pose. Terms see per-image (F,) values
through :meth:`FitState.image_expression`, :meth:`FitState.to_camera` and :meth:`FitState.spread_instants`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from .camera import axis_angle_to_matrix, intrinsics, model_to_camera, MODEL_TO_OPENCV

# Names of the tensors that stages may free for optimisation.
PARAMETER_NAMES = ("identity", "expression", "rotation", "translation", "log_focal", "sh", "albedo", "displacement",
                   "view_rotation", "view_translation", "rig_log_scale")
# Tensors that describe the capture, never optimised.
FIXED_NAMES = ("principal", "image_size", "frame_view", "frame_instant", "view_fixed")
# The extrinsics of a multi-view rig (fitted per view unless the view's row of ``view_fixed`` is set).
VIEW_PARAMETERS = ("view_rotation", "view_translation")
RIG_PARAMETERS = VIEW_PARAMETERS + ("rig_log_scale",)  # everything that places the cameras of a rig


@dataclass
class FitState:
    identity: torch.Tensor  # (K_id,) shared by the subject
    expression: torch.Tensor  # (T, K_exp) per instant (T = F without frame_instant)
    rotation: torch.Tensor  # (T, 3) axis-angle of the head (model frame -> camera or world, after MODEL_TO_OPENCV)
    translation: torch.Tensor  # (T, 3) model units (cm)
    log_focal: torch.Tensor  # (V,) log focal length in pixels, per view
    principal: torch.Tensor  # (V, 2) principal point in pixels, per view (held fixed)
    image_size: torch.Tensor  # (V, 2) int64 (height, width), per view
    frame_view: torch.Tensor  # (F,) int64 view index of each image
    sh: torch.Tensor | None = None  # (F, 9, 3) spherical-harmonics lighting per image
    albedo: torch.Tensor | None = None  # (K, 3) coefficients of the model's albedo basis (fitter.model.albedo)
    displacement: torch.Tensor | None = None  # (1, 1, H, W) UV displacement map (model units)
    frame_instant: torch.Tensor | None = None  # (F,) int64 instant of each image; None: image f is instant f
    view_rotation: torch.Tensor | None = None  # (V, 3) axis-angle, world -> camera; None: one camera, no world
    view_translation: torch.Tensor | None = None  # (V, 3) cm, world -> camera (times exp(rig_log_scale))
    view_fixed: torch.Tensor | None = None  # (V,) bool: the view's extrinsics are known (calibrated) or the gauge
    rig_log_scale: torch.Tensor | None = None  # () log of the factor on view_translation (a rig known up to scale)
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
        """Images (the energy terms' frames)."""
        return self.frame_view.shape[0]

    @property
    def num_instants(self) -> int:
        """Time instants (rows of expression, rotation, translation)."""
        return self.expression.shape[0]

    @property
    def multiview(self) -> bool:
        """Whether images map to instants and views through a rig (else image f is instant f, seen by its view)."""
        return self.frame_instant is not None or self.view_rotation is not None

    def instants(self) -> torch.Tensor:
        """Instant of each image (F,) int64."""
        if self.frame_instant is None:
            return torch.arange(self.num_frames, device=self.device)
        return self.frame_instant

    def image_expression(self) -> torch.Tensor:
        """Expression of each image (F, K_exp): its instant's."""
        return self.expression if self.frame_instant is None else self.expression[self.frame_instant]

    def spread_instants(self, values: torch.Tensor) -> torch.Tensor:
        """Per-instant energies (T,) as per-image values (F,) that sum to them (each instant's over its images)."""
        if self.frame_instant is None:
            return values
        counts = torch.bincount(self.frame_instant, minlength=values.shape[0]).clamp(min=1).to(values)
        return (values / counts)[self.frame_instant]

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
        """Model-frame vertices (F, N, 3) -> each image's camera frame with this state's pose."""
        if not self.multiview:
            return model_to_camera(vertices, self.rotation, self.translation)
        r, t = self.image_pose()
        return vertices @ r.transpose(-1, -2) + t[:, None, :]

    def view_extrinsics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """World -> camera rotation (V, 3, 3) and translation (V, 3) of every view (identity without a rig)."""
        views = self.log_focal.shape[0]
        if self.view_rotation is None:
            eye = torch.eye(3, dtype=self.rotation.dtype, device=self.device)
            return eye.expand(views, 3, 3), torch.zeros(views, 3, dtype=self.rotation.dtype, device=self.device)
        t = self.view_translation
        if self.rig_log_scale is not None:
            t = t * self.rig_log_scale.exp()
        return axis_angle_to_matrix(self.view_rotation), t

    def image_pose(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Model -> camera rotation (F, 3, 3) (axis convention included) and translation (F, 3) of each image:
        its view's extrinsics composed with its instant's head pose."""
        head = axis_angle_to_matrix(self.rotation) @ MODEL_TO_OPENCV.to(self.rotation)
        instant = self.instants()
        head, trans = head[instant], self.translation[instant]
        if self.view_rotation is None:
            return head, trans
        rv, tv = self.view_extrinsics()
        rv, tv = rv[self.frame_view], tv[self.frame_view]
        return rv @ head, (rv @ trans[:, :, None])[:, :, 0] + tv

    def rotation_matrix(self) -> torch.Tensor:
        """Full model->camera rotation per image (F, 3, 3), including the axis convention."""
        if not self.multiview:
            return axis_angle_to_matrix(self.rotation) @ MODEL_TO_OPENCV.to(self.rotation)
        return self.image_pose()[0]

    # -- optimisation helpers ----------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), torch.Tensor)}

    def free(self, names: list[str]) -> list[torch.Tensor]:
        """Make the named tensors leaves that require grad (and the others not); returns the freed ones."""
        freed = []
        for name, value in self.tensors().items():
            if name in FIXED_NAMES:
                continue
            leaf = value.detach().clone().requires_grad_(name in names)
            setattr(self, name, leaf)
            if name in names:
                freed.append(leaf)
                if name in VIEW_PARAMETERS and self.view_fixed is not None and bool(self.view_fixed.any()):
                    movable = (~self.view_fixed).to(leaf.dtype)[:, None]  # known views do not move
                    leaf.register_hook(lambda grad, keep=movable: grad * keep)
        unknown = set(names) - set(PARAMETER_NAMES)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; choose from {PARAMETER_NAMES}")
        return freed

    def select(self, instants: list[int], images: list[int]) -> "FitState":
        """The sub-subject of some instants (sorted) and of some of their images: the same identity, cameras
        and rig; per-instant and per-image tensors cut to them, image -> instant links renumbered. Lighting,
        the displacement map and the extras are left out (a sub-fit makes its own)."""
        dev = self.device
        inst = torch.as_tensor(instants, dtype=torch.int64, device=dev)
        imgs = torch.as_tensor(images, dtype=torch.int64, device=dev)
        sub = self.detached()
        sub.expression, sub.rotation, sub.translation = (v[inst] for v in (sub.expression, sub.rotation,
                                                                          sub.translation))
        sub.frame_view = sub.frame_view[imgs]
        if self.frame_instant is not None:
            renumber = torch.full((self.num_instants,), -1, dtype=torch.int64, device=dev)
            renumber[inst] = torch.arange(len(instants), device=dev)
            sub.frame_instant = renumber[self.frame_instant[imgs]]
            if bool((sub.frame_instant < 0).any()):
                raise ValueError("select: an image's instant is not among the selected instants")
        elif not torch.equal(inst, imgs):
            raise ValueError("select: without frame_instant, images and instants are the same")
        sub.sh, sub.displacement, sub.extras = None, None, {}
        return sub

    def assign(self, sub: "FitState", instants: list[int], names: tuple[str, ...]) -> None:
        """Copy the named tensors of a sub-subject back: per-instant ones (expression, rotation, translation)
        into ``instants``, shared ones (identity, cameras, rig) whole."""
        inst = torch.as_tensor(instants, dtype=torch.int64, device=self.device)
        for name in names:
            value = getattr(sub, name)
            if value is None:
                continue
            value = value.detach().clone()
            if name in ("expression", "rotation", "translation"):
                target = getattr(self, name).detach().clone()
                target[inst] = value
                setattr(self, name, target)
            else:
                setattr(self, name, value)

    def detached(self) -> "FitState":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in values.items():
            if isinstance(v, torch.Tensor):
                values[k] = v.detach().clone()
        values["extras"] = dict(self.extras)
        return FitState(**values)

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.tensors().items()}

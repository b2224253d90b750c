"""Pinhole cameras, head poses and projection, batched over frames.

Conventions (see docs/conventions.md):
- Camera space is OpenCV's: x right, y down, z forward (into the scene).
- Pixel coordinates have their origin at the top-left corner of the top-left pixel, so the centre of pixel
  (row i, column j) is (j + 0.5, i + 0.5).
- Models use their own frame (ICT: x right, y up, face towards +z). ``MODEL_TO_OPENCV`` converts it, here
  and nowhere else, so a zero rotation means a face looking straight at the camera.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .io.images import PLAUSIBLE_FOCAL_35MM

# Rotation by 180 degrees about x: (x, y, z) -> (x, -y, -z).
MODEL_TO_OPENCV = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula for (..., 3) axis-angle vectors -> (..., 3, 3); smooth at zero."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    # sin(t)/t and (1-cos(t))/t^2 with their Taylor series near zero.
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis_angle.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`axis_angle_to_matrix` for (..., 3, 3) numpy rotations (used for initialisation)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(np.asarray(matrix, np.float64)).as_rotvec()


def model_to_camera(vertices: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Model-frame points (F, N, 3) -> OpenCV camera frame: R(rotation) @ MODEL_TO_OPENCV @ x + translation.

    rotation: (F, 3) axis-angle; translation: (F, 3) in model units.
    """
    r = axis_angle_to_matrix(rotation) @ MODEL_TO_OPENCV.to(vertices)
    return vertices @ r.transpose(-1, -2) + translation[:, None, :]


def intrinsics(focal: torch.Tensor, principal: torch.Tensor) -> torch.Tensor:
    """K matrices (F, 3, 3) from focal lengths (F,) in pixels and principal points (F, 2)."""
    zeros, ones = torch.zeros_like(focal), torch.ones_like(focal)
    return torch.stack(
        [focal, zeros, principal[:, 0], zeros, focal, principal[:, 1], zeros, zeros, ones], dim=-1
    ).reshape(-1, 3, 3)


def project(points: torch.Tensor, K: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Camera-space points (F, N, 3) -> pixel coordinates (F, N, 2) with intrinsics K (F, 3, 3)."""
    z = points[..., 2:3].clamp(min=eps)
    xy = points[..., :2] / z
    return xy * torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None] + K[:, None, :2, 2]


def focal_from_fov(fov_degrees: float, size: float) -> float:
    """Focal length in pixels for a field of view (degrees) spanning ``size`` pixels."""
    return 0.5 * size / math.tan(math.radians(fov_degrees) / 2.0)


def focal_from_exif(focal_35mm: float | None, width: int, height: int) -> float | None:
    """Focal length in pixels from EXIF's 35 mm-equivalent focal length (diagonal-matched), if known and plausible
    (fitter.io.images.PLAUSIBLE_FOCAL_35MM; load_image already drops and warns about the others)."""
    low, high = PLAUSIBLE_FOCAL_35MM
    if focal_35mm is None or not (math.isfinite(focal_35mm) and low <= focal_35mm <= high):  # absent or broken
        return None
    diag_px = math.hypot(width, height)
    return float(focal_35mm) * diag_px / math.hypot(36.0, 24.0)

"""The detector's shared landmark errors: a few modes the landmark term should not fit.

MediaPipe's error on a face (detection minus the true point) is not 478 independent errors: a contour slides as a
whole, both eyes are read too wide together. Measured on wild renders (``assets/build/build_landmark_modes.py``),
the first 5 modes hold about 60 % of its variance. Fitting those modes bends identity and expression to explain
the detector, so the landmark term may whiten its residual against them (``[landmarks] error_modes``; off in every
preset: better on wild renders, but on real photos and video frames it removes identity along with the error,
docs/fitting.md). With noise covariance ``s^2 I + U diag(lam) U^T`` the Mahalanobis residual is
``r - U diag(c) U^T r`` with ``c = 1 - sqrt(s^2/(s^2+lam))`` (in units of ``s``). The modes live in each face's
own frame (x along the detected eye axis, lengths in face sizes), so one set serves every head roll and image
size; as the targets are fixed, the frame is fixed per fit and the whitening is one linear map per frame, applied
in pixels.
"""
from __future__ import annotations

import torch

EYE_CORNERS = (33, 263)  # MediaPipe's outer eye corners: the x axis of the face frame


def face_rotation(points: torch.Tensor) -> torch.Tensor:
    """Rotations (F, 2, 2) taking image offsets into each face's frame (x from landmark 33 to landmark 263)."""
    d = points[:, EYE_CORNERS[1]] - points[:, EYE_CORNERS[0]]
    d = d / d.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    c, s = d[:, 0], d[:, 1]
    return torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)


def suppression(variances: torch.Tensor, floor: float) -> torch.Tensor:
    """How much of each mode's residual the whitening removes: ``1 - sqrt(s^2 / (s^2 + lam))`` (in [0, 1))."""
    return 1 - torch.sqrt(floor / (floor + variances))


def image_modes(basis: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """The face-frame modes (2N, K) turned into each frame's image axes (F, 2N, K) (orthonormal columns stay so)."""
    n = basis.shape[0] // 2
    per_point = basis.reshape(n, 2, -1)  # face-frame (x, y) of each point
    return torch.einsum("fij,nik->fnjk", rotation, per_point).reshape(rotation.shape[0], 2 * n, -1)


def whiten(residuals: torch.Tensor, modes: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Residuals (F, N, 2) less ``strength`` (K,) of their part along each frame's modes (F, 2N, K)."""
    flat = residuals.reshape(residuals.shape[0], -1)
    along = torch.einsum("fnk,fn->fk", modes, flat) * strength
    return (flat - torch.einsum("fnk,fk->fn", modes, along)).reshape(residuals.shape)

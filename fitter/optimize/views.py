"""How far each image's evidence is trusted: less the further the face is turned from its camera.

MediaPipe's landmarks get much worse as the face turns from the camera (NME against the true points on the
multi-view benchmark: 0.018-0.02 frontal, 0.03-0.04 at 30-35 deg, 0.06-0.10 at 45-55 deg, 0.12-0.25 at 55-65
deg; on the wild photos of seed 0 the error grows 1.3x at 15-30 deg, 2.4x at 30-40, 3.4x at 40-50), and the part
masks drawn from them, and the shading of a near-profile view, are foreshortened and edge-dominated. Evidence m
times noisier counts 1/m^2, with ``m = 1 + (angle / degrees)^power``. Two uses:

- ``turn_weights`` (the preset's ``[turn_noise]``, every fit): an instant's evidence against the priors, by its
  most frontal image, so that a near-profile photo leans on the shape prior instead of fitting the detector's
  errors; the views of a multi-view instant share their most frontal view's factor.
- ``view_weights`` (``[video] view_noise_*``, multi-view phases): the views of one instant against each other,
  ``(m_front / m)^2``, so a photo or a one-camera clip (one view per instant) is unchanged by it.
"""
from __future__ import annotations

import torch

from ..state import FitState


@torch.no_grad()
def off_axis_deg(state: FitState) -> torch.Tensor:
    """Per image (F,): degrees between the face's forward axis (the model's +z) and the ray from the face to its
    camera."""
    centre = torch.zeros(state.num_frames, 1, 3, device=state.device, dtype=state.rotation.dtype)
    ahead = centre + torch.tensor([0.0, 0.0, 1.0], device=centre.device, dtype=centre.dtype)
    c, a = state.to_camera(centre)[:, 0], state.to_camera(ahead)[:, 0]
    cos = ((a - c) * -c).sum(-1) / ((a - c).norm(dim=-1) * c.norm(dim=-1)).clamp(min=1e-9)
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def noise_factor(state: FitState, degrees: float, power: float) -> torch.Tensor:
    """Per image (F,): ``m = 1 + (off-axis angle / degrees)^power``, how many times noisier than frontal."""
    return 1.0 + (off_axis_deg(state) / degrees) ** power


def instant_least(state: FitState, values: torch.Tensor) -> torch.Tensor:
    """Per image (F,): the least of ``values`` over the images of its instant (its own for a one-view instant)."""
    if state.frame_instant is None:
        return values
    instant = state.frame_instant
    least = torch.full((int(instant.max()) + 1,), float("inf"), device=values.device, dtype=values.dtype)
    return least.scatter_reduce(0, instant, values, reduce="amin")[instant]


@torch.no_grad()
def view_weights(state: FitState, degrees: float, power: float) -> torch.Tensor:
    """Per image (F,): ``(m_front / m)^2``, ``m_front`` the smallest ``m`` among the images of the same instant
    (1 for an image that is its own instant)."""
    noise = noise_factor(state, degrees, power)
    return (instant_least(state, noise) / noise) ** 2


@torch.no_grad()
def turn_weights(state: FitState, degrees: float, power: float) -> torch.Tensor:
    """Per image (F,): ``1 / m_front^2``, the instant's evidence against the priors by its most frontal image."""
    return instant_least(state, noise_factor(state, degrees, power)) ** -2

"""How much each view of a multi-view instant is trusted: less the further the face is turned from it.

MediaPipe's landmarks get much worse as the face turns from the camera (NME against the true points on the
multi-view benchmark: 0.018-0.02 frontal, 0.03-0.04 at 30-35 deg, 0.06-0.10 at 45-55 deg, 0.12-0.25 at 55-65
deg), and the part masks and shading of a near-profile view are foreshortened and edge-dominated. A view whose
evidence is m times noisier counts 1/m^2: the per-image energies of the view-weighted terms are multiplied by
``(m_front / m)^2`` with ``m = 1 + (angle / degrees)^power``, relative to the instant's most frontal view, so a
photo or a one-camera clip (one view per instant) is unchanged.
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


@torch.no_grad()
def view_weights(state: FitState, degrees: float, power: float) -> torch.Tensor:
    """Per image (F,): ``(m_front / m)^2``, ``m = 1 + (off-axis angle / degrees)^power``, ``m_front`` the smallest
    ``m`` among the images of the same instant (1 for an image that is its own instant)."""
    noise = 1.0 + (off_axis_deg(state) / degrees) ** power
    if state.frame_instant is None:
        return torch.ones_like(noise)
    instant = state.frame_instant
    least = torch.full((int(instant.max()) + 1,), float("inf"), device=noise.device, dtype=noise.dtype)
    least = least.scatter_reduce(0, instant, noise, reduce="amin")
    return (least[instant] / noise) ** 2

"""How sure the fit is of its focal length: a Laplace approximation of the posterior of log f.

One photo without EXIF does not fix the focal length: a face seen with a long lens from far and one seen with
a short lens from near differ only through perspective, which landmarks measure weakly. The fitted energy's
curvature says how weakly. Treating the stage energy as -2 log p (each term is a sum of squared, unit-noise
residuals), the covariance of the free parameters is 2 H^-1 with H the Hessian at the optimum; the focal
length's marginal standard deviation is the (log f, log f) entry. The raw figure assumes the terms' noise
models are right; ``calibration`` (measured on the synthetic benchmark, [camera] focal_std_calibration) scales
it so that about 68 % of true focal lengths fall within one reported standard deviation.
"""
from __future__ import annotations

import math

import torch

from ..model.morphable import MorphableModel
from ..scene import Scene
from ..state import FitState

# The parameters the focal length trades off against (pose and shape); lighting and albedo do not move it.
COUPLED = ("log_focal", "rotation", "translation", "identity", "expression")
# Hessian rows computed together. All at once (torch.autograd.functional.hessian, vectorize=True) keeps one copy
# of the energy's backward graph per row: a clip's 16 keyframes (~1000 parameters) took the process from ~0.6 to
# ~1.5 GB at 1080p, the peak of a whole clip's fit. docs/video.md has the measurement.
HESSIAN_ROWS = 128


def hessian(energy, x0: torch.Tensor, rows: int = HESSIAN_ROWS) -> torch.Tensor:
    """The (n, n) Hessian of the scalar ``energy`` at ``x0``, its rows taken ``rows`` at a time from one graph of
    the gradient, so memory grows with ``rows``, not with the number of parameters."""
    x = x0.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(energy(x), x, create_graph=True)
    n = x.numel()
    if not gradient.requires_grad:  # the energy is linear in x
        return torch.zeros(n, n, dtype=x.dtype, device=x.device)
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    blocks = []
    for start in range(0, n, rows):
        (block,) = torch.autograd.grad(gradient, x, eye[start:start + rows], retain_graph=True,
                                       is_grads_batched=True, allow_unused=True)
        blocks.append(block if block is not None else torch.zeros_like(eye[start:start + rows]))
    return torch.cat(blocks)


def focal_log_std(model: MorphableModel, state: FitState, terms: dict, weights: dict[str, float],
                  calibration: float = 1.0) -> float:
    """Marginal standard deviation of log(focal) under the weighted ``terms`` (first view), or NaN when the
    curvature is not positive definite (the data says nothing about the focal length)."""
    base = state.detached()
    sizes = [getattr(base, name).numel() for name in COUPLED]
    x0 = torch.cat([getattr(base, name).reshape(-1) for name in COUPLED]).double()

    def energy(x: torch.Tensor) -> torch.Tensor:
        s = base.detached()
        for name, part in zip(COUPLED, torch.split(x, sizes)):
            setattr(s, name, part.reshape(getattr(base, name).shape).to(getattr(base, name).dtype))
        scene = Scene(model, s)
        return sum(float(w) * terms[name](scene).sum() for name, w in weights.items() if name in terms)

    for name in weights:  # discrete choices (contour points, visible sets) as the fit left them
        if name in terms:
            terms[name].update(Scene(model, base))
    curvature = hessian(energy, x0)
    curvature = 0.5 * (curvature + curvature.T)
    try:
        covariance = 2.0 * torch.linalg.inv(curvature)
    except RuntimeError:
        return float("nan")
    variance = float(covariance[0, 0])
    if not math.isfinite(variance) or variance <= 0:
        return float("nan")
    return calibration * math.sqrt(variance)

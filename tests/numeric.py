"""Reference numbers for term tests: robust losses written out for hand-computed values, and finite
differences for gradient checks of terms that cannot run through torch.autograd.gradcheck whole (float32
internals): a central difference on a few chosen coordinates."""
from __future__ import annotations

import math
from typing import Callable

import torch


def pseudo_huber(x: float, delta: float) -> float:
    """2 delta^2 (sqrt(1 + (x / delta)^2) - 1): quadratic near 0, linear beyond the knee delta."""
    return 2 * delta * delta * (math.sqrt(1 + (x / delta) ** 2) - 1)


def central_difference(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, index: tuple,
                       step: float) -> float:
    """d energy(x) / d x[index] by a central difference of ``step`` (``energy`` returns a scalar tensor)."""
    plus, minus = x.detach().clone(), x.detach().clone()
    plus[index] += step
    minus[index] -= step
    with torch.no_grad():
        return float((energy(plus) - energy(minus)) / (2 * step))


def autograd_gradient(energy: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The gradient of the scalar ``energy(x)`` by backpropagation."""
    leaf = x.detach().clone().requires_grad_(True)
    energy(leaf).backward()
    return leaf.grad

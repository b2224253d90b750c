"""What every energy term looks like: a name and a callable giving a per-frame value.

A term is constructed with its observations (targets) and never knows about other terms; the stage that
uses it multiplies it by the weight from the preset. Values are negative log-likelihood-like: a well-fitted
term is O(number of its residuals), so preset weights near 1 are meaningful.
"""
from __future__ import annotations

from typing import Protocol

import torch

from ..scene import Scene


class EnergyTerm(Protocol):
    name: str

    def __call__(self, scene: Scene) -> torch.Tensor:
        """Per-frame energy (F,) for the scene's state."""
        ...


def pseudo_huber(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Robust loss: x**2 for |x| << delta, growing like 2 * delta * |x| beyond it."""
    return 2.0 * delta * delta * (torch.sqrt(1.0 + (x / delta) ** 2) - 1.0)

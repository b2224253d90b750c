"""The sRGB transfer curve (IEC 61966-2-1), one implementation for numpy arrays and torch tensors.

Photos are sRGB-encoded; the renderer and the energies work in linear light; exports and overlays go back.
"""
from __future__ import annotations

import numpy as np
import torch

# The curve's constants are the standard's: a linear toe below these thresholds, a 2.4 power above.
_LINEAR_THRESHOLD = 0.0031308
_ENCODED_THRESHOLD = 0.04045
_TOE_SLOPE = 12.92
_GAMMA = 2.4
_OFFSET = 0.055


def linear_to_srgb(x):
    """Linear light in [0, 1] -> sRGB-encoded values (input clipped to [0, 1]); numpy or torch."""
    if isinstance(x, torch.Tensor):
        x = x.clamp(0.0, 1.0)
        return torch.where(x <= _LINEAR_THRESHOLD, _TOE_SLOPE * x,
                           (1 + _OFFSET) * x.clamp(min=1e-8) ** (1 / _GAMMA) - _OFFSET)
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= _LINEAR_THRESHOLD, _TOE_SLOPE * x, (1 + _OFFSET) * np.power(x, 1 / _GAMMA) - _OFFSET)


def srgb_to_linear(x):
    """sRGB-encoded values in [0, 1] -> linear light; numpy or torch."""
    if isinstance(x, torch.Tensor):
        return torch.where(x <= _ENCODED_THRESHOLD, x / _TOE_SLOPE,
                           ((x.clamp(min=0) + _OFFSET) / (1 + _OFFSET)) ** _GAMMA)
    return np.where(x <= _ENCODED_THRESHOLD, x / _TOE_SLOPE, np.power((np.maximum(x, 0) + _OFFSET) / (1 + _OFFSET), _GAMMA))

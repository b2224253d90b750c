"""Stages that move only part of a parameter: the expression coefficients whose names match a stage's
``expression_free`` patterns (e.g. ``["jaw*", "mouth*"]``), the others held where the earlier stages left them.

Why: the photometric stages explain shading with whatever they may move; an eyebrow or eyelid blendshape that
slides to darken a shadow takes the fit off the eyes' parts on real photos, while the mouth still needs to
finish expressions the landmark and PRDL stages left short (docs/photometric.md)."""
from __future__ import annotations

from fnmatch import fnmatchcase

import numpy as np
import torch

STAGE_KEY = "expression_free"


def expression_mask(names: list[str] | None, patterns: list[str], stage: str = "?") -> np.ndarray:
    """(K,) bool: the expression coefficients any pattern matches (case-sensitive shell patterns)."""
    if not names:
        raise ValueError(f"stage {stage!r}: {STAGE_KEY} needs a model with expression names; remove the key")
    mask = np.zeros(len(names), bool)
    for pattern in patterns:
        hits = np.array([fnmatchcase(n, pattern) for n in names])
        if not hits.any():
            raise ValueError(f"stage {stage!r}: {STAGE_KEY} pattern {pattern!r} matches no expression of the model "
                             f"(names such as {', '.join(names[:4])}, ...); fix the pattern in the preset/config")
        mask |= hits
    return mask


def hold_expression(expression: torch.Tensor, mask: np.ndarray) -> torch.utils.hooks.RemovableHandle:
    """Zero the gradient of the coefficients outside ``mask`` on the freed ``expression`` leaf ((T, K)): L-BFGS
    and Adam then never move them (their steps stay in the span of the masked gradients)."""
    keep = torch.as_tensor(mask, dtype=expression.dtype, device=expression.device)
    return expression.register_hook(lambda grad: grad * keep)

"""Array arguments as the numpy shapes the mesh and map code works on.

Callers hand over numpy arrays or torch tensors, with or without a leading frame axis of 1; these helpers
turn them into plain float64 / bool numpy arrays of one shape, or say in one line what was wrong.
"""
from __future__ import annotations

import numpy as np
import torch

# Below this length a vector has no direction; normalising divides by it instead of by ~0.
MIN_VECTOR_LENGTH = 1e-20


def as_numpy(x) -> np.ndarray:
    """A numpy view of ``x`` (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _drop_unit_axes(a: np.ndarray, ndim: int) -> np.ndarray:
    while a.ndim > ndim and a.shape[0] == 1:
        a = a[0]
    return a


def one_frame_vertices(vertices) -> np.ndarray:
    """(V, 3) or (1, V, 3) -> (V, 3) float64."""
    v = as_numpy(vertices).astype(np.float64)
    if v.ndim == 3:
        if v.shape[0] != 1:
            raise ValueError(f"one frame of vertices expected, got {v.shape}")
        v = v[0]
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {v.shape}")
    return v


def scalar_map(values) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (H, W) float64."""
    d = _drop_unit_axes(as_numpy(values).astype(np.float64), 2)
    if d.ndim != 2:
        raise ValueError(f"a scalar map (H, W) is expected, got {as_numpy(values).shape}")
    return d


def texel_mask(mask, shape) -> np.ndarray:
    """(H, W) bool mask of the valid texels of a map of ``shape``; None means every texel is valid."""
    if mask is None:
        return np.ones(shape, bool)
    m = _drop_unit_axes(as_numpy(mask).astype(bool), 2)
    if m.shape != tuple(shape):
        raise ValueError(f"mask {m.shape} does not match the map {tuple(shape)}")
    return m


def unit_vectors(x: np.ndarray, eps: float = MIN_VECTOR_LENGTH) -> np.ndarray:
    """``x`` (..., 3) divided by its length along the last axis (zero vectors stay zero)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, eps)


def nonfinite_problem(values: dict) -> str:
    """'' when every array/number is finite, else which ones are not: 'vertices (12 of 80151 values), sh'."""
    bad = []
    for name, value in values.items():
        if value is None:
            continue
        arr = np.asarray(value, dtype=np.float64)
        count = int(arr.size - np.isfinite(arr).sum())
        if count:
            bad.append(f"{name} ({count} of {arr.size} values)" if arr.size > 1 else name)
    return ", ".join(bad)

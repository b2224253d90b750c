"""Shape comparison used by benchmarks, tests and asset checks."""
from __future__ import annotations

import numpy as np

MM_PER_CM = 10.0  # models work in centimetres; errors are reported in millimetres


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` (N, 3) moved by the rotation, translation and scale that best fit it to ``target`` (Umeyama),
    in float64: in float32 a face aligned to itself ends ~1e-4 mm away, enough to blur distances of near-equal faces."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    ms, mt = source.mean(0), target.mean(0)
    a, b = source - ms, target - mt
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    u[:, -1] *= d
    scale = s.sum() / (a**2).sum()
    return scale * a @ (u @ vt) + mt


def procrustes_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance after the best similarity transform of ``estimate`` onto ``truth``."""
    return float(np.linalg.norm(similarity_align(estimate, truth) - truth, axis=1).mean())


def rms_mm(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance (mm) between corresponding points (N, 3) given in model units (cm)."""
    return float(np.sqrt(((a - b) ** 2).sum(1).mean()) * MM_PER_CM)

"""Eyes and mouth interior of wild renders, per vertex: irises with a dark limbal ring, radial streaks and a
lighter collarette, a sclera that is not paper white, and teeth along the mouth opening's upper rim.
"""
from __future__ import annotations

import numpy as np

from ..model.morphable import MorphableModel
from .scenes import IRIS_DEG, PUPIL_DEG, eye_angles

SCLERA = np.array([0.62, 0.55, 0.5], np.float32)  # linear: a healthy sclera is a light warm grey
SCLERA_CORNER = np.array([0.55, 0.3, 0.27], np.float32)  # redder towards the corners
IRIS_ALBEDO = 0.5  # irises reflect little: the clean palette's colours, darkened
TEETH = np.array([0.55, 0.48, 0.36], np.float32)
MOUTH = np.array([0.05, 0.012, 0.012], np.float32)
LOWER_TEETH = 0.6  # the lower rim's teeth weight (the upper rim's is 1)
TOOTH_WIDTH_CM = 0.75


def eye_albedo(model: MorphableModel, iris_colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, 3) albedo of the eye vertices (0 elsewhere) and a (V,) mask of them."""
    topo = model.topology
    out = np.zeros((topo.num_vertices, 3), np.float32)
    phase = rng.uniform(0, 2 * np.pi, 2)
    for name in ("M_ScleraLeft", "M_ScleraRight", "M_IrisLeft", "M_IrisRight"):
        if name not in topo.material_names:
            continue
        v, ang = eye_angles(model, name)
        if name.startswith("M_Sclera"):
            side = np.clip((ang - 30) / 60, 0, 1)[:, None]
            out[v] = SCLERA * (1 - side) + SCLERA_CORNER * side
            continue
        mean = model.mean.detach().cpu().numpy()[v]
        d = mean - mean.mean(0)
        around = np.arctan2(d[:, 1], d[:, 0])
        r = np.clip(ang / IRIS_DEG, 0, 1.5)[:, None]
        streak = 1 + 0.25 * np.sin(around * 23 + phase[0])[:, None] * np.sin(around * 7 + phase[1])[:, None]
        ring = np.where(r > 0.8, 0.35, 1.0)  # the limbal ring
        collarette = 1 + 0.5 * np.exp(-((r - 0.55) / 0.12) ** 2)
        colour = IRIS_ALBEDO * iris_colour[None] * streak * ring * collarette * rng.uniform(0.85, 1.15, (len(v), 1))
        colour = np.where(ang[:, None] < PUPIL_DEG, 0.01, colour)
        out[v] = np.where(ang[:, None] < IRIS_DEG, colour, SCLERA)
    return np.clip(out, 0, 1)


def mouth_rim_teeth(loop_positions: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(L,) teeth weight of the mouth opening's rim vertices: 1 on the upper rim, less on the lower (whose
    teeth show less), given the rim in the camera frame and the head's up direction there."""
    height = (loop_positions - loop_positions.mean(0)) @ up
    return np.where(height > 0, 1.0, LOWER_TEETH).astype(np.float32)

"""Shoulders in clothes under the head, so that a wild render is a portrait rather than a floating bust.

ICT's mesh ends in a bare bust (neck, the tops of the shoulders and the chest). The torso is a lofted
surface, elliptical rings from the waist up to a neck opening, sized from a designed silhouette and widened
wherever the case's own bust would poke through, so that the bust is dressed; a collar may close the
neckline. It follows the head rigidly (the bust is part of the head mesh).
"""
from __future__ import annotations

import numpy as np

from .effects import Effect, effect_rng
from .occluders import FABRIC_COLOURS
from .shapes import (
    PATTERN_FABRIC,
    PATTERN_NONE,
    Material,
    Prop,
    Shape,
    merge_shapes,
    tube,
)

# The torso's designed silhouette (model frame, cm): ring heights from the waist up to the neckline, the
# half-widths and half-depths of a 40 x 22 cm torso at those heights, and the rings' centre depth.
RING_HEIGHTS = np.array([-60.0, -35.0, -24.0, -19.5, -17.0, -15.2, -13.8, -13.0])
RING_WIDTHS = np.array([16.0, 17.0, 19.5, 20.5, 19.0, 15.0, 10.5, 8.0])
RING_DEPTHS = np.array([10.0, 10.5, 10.5, 10.0, 9.0, 7.8, 6.8, 6.2])
ARM_RADIUS_CM = 4.6  # upper arms hang from the shoulders' outer ends
RING_CENTRE_Z = -2.2
FIT_MARGIN_CM = 0.6  # the clothes stand this far off the bust they cover
RING_SEGMENTS = 36


def sample_clothing(seed: int, index: int) -> list[Effect]:
    rng = effect_rng(seed, index, "clothing")
    return [Effect("clothing", "scene", {
        "colour": FABRIC_COLOURS[rng.integers(len(FABRIC_COLOURS))] * rng.uniform(0.7, 1.3),
        "width_scale": rng.uniform(0.9, 1.1), "collar": bool(rng.random() < 0.4),
        "neckline_cm": rng.uniform(0.0, 1.5), "pattern": bool(rng.random() < 0.3),
        "period_cm": rng.uniform(0.4, 2.0)})]


def torso(v_model: np.ndarray, width_scale: float, neckline_cm: float) -> Shape:
    """The lofted torso around the bust of ``v_model`` (V, 3)."""
    heights = RING_HEIGHTS - np.r_[np.zeros(len(RING_HEIGHTS) - 2), neckline_cm, neckline_cm]
    widths, depths = RING_WIDTHS * width_scale, RING_DEPTHS.copy()
    bounds = np.r_[heights[0] - 1, heights, heights[-1] + 0.5]
    for k in range(len(heights)):  # widen each ring until it holds the bust between its neighbours
        near = v_model[(v_model[:, 1] > bounds[k]) & (v_model[:, 1] < bounds[k + 2])]
        if len(near):
            reach = np.sqrt((near[:, 0] / widths[k]) ** 2 + ((near[:, 2] - RING_CENTRE_Z) / depths[k]) ** 2).max()
            grow = max(1.0, reach * (1 + FIT_MARGIN_CM / min(widths[k], depths[k])))
            widths[k] *= grow
            depths[k] *= grow
    a = np.linspace(0, 2 * np.pi, RING_SEGMENTS, endpoint=False)
    rings = np.stack([np.sin(a)[None] * widths[:, None], np.broadcast_to(heights[:, None], (len(heights), len(a))),
                      np.cos(a)[None] * depths[:, None] + RING_CENTRE_Z], -1)
    r = np.arange(len(heights) - 1)[:, None]
    c = np.arange(RING_SEGMENTS)[None]
    c1 = (c + 1) % RING_SEGMENTS
    lo, hi = r * RING_SEGMENTS, (r + 1) * RING_SEGMENTS
    tris = np.concatenate([np.stack([lo + c, lo + c1, hi + c1], -1).reshape(-1, 3),
                           np.stack([lo + c, hi + c1, hi + c], -1).reshape(-1, 3)])
    return Shape(rings.reshape(-1, 3), tris.astype(np.int64))


def clothing_props(v_model: np.ndarray, effect: Effect) -> list[Prop]:
    """The dressed torso (model frame)."""
    p = effect.params
    body = torso(v_model, p["width_scale"], p["neckline_cm"])
    parts = [body]
    shoulder = RING_WIDTHS[3] * p["width_scale"] - 0.6 * ARM_RADIUS_CM
    for side in (-1, 1):  # upper arms, slightly away from the body
        arm = np.array([[side * shoulder, -19.0, RING_CENTRE_Z], [side * (shoulder + 1.0), -34.0, RING_CENTRE_Z],
                        [side * (shoulder + 1.5), -52.0, RING_CENTRE_Z + 1.0]])
        parts.append(tube(arm, np.array([ARM_RADIUS_CM, ARM_RADIUS_CM * 0.95, ARM_RADIUS_CM * 0.85]), sides=16))
    if p["collar"]:
        top = body.vertices[-RING_SEGMENTS:]
        parts.append(tube(top + [0, 0.5, 0], 0.8, sides=8, closed=True, aspect=1.5))
    material = Material(np.asarray(p["colour"], np.float32), roughness=0.85, f0=0.03,
                        pattern=PATTERN_FABRIC if p["pattern"] else PATTERN_NONE, period_cm=p["period_cm"])
    return [Prop("clothing", merge_shapes(parts), material, occluder=False)]

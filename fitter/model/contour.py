"""Candidate vertices for contour landmarks, so the jawline can slide to the silhouette of a turned face.

A 2D detector's jawline points lie on the visible outline, which on a turned face is not the frontal jaw
vertex but one further back. For each iBUG jaw landmark the model gives a substitute vertex on that far
outline (ICT: ``contour_substitutes``); the candidates are the vertices near the 3D segment from the
landmark vertex to its substitute.
"""
from __future__ import annotations

import numpy as np

from .morphable import MorphableModel

BAND_CM = 0.6  # half-width of the band of candidates around the segment


def contour_candidates(model: MorphableModel, landmark_format: str, band: float = BAND_CM) -> dict[int, np.ndarray]:
    """Landmark index -> candidate vertex ids (first = the landmark's own vertex); empty when not applicable."""
    topo = model.topology
    if landmark_format != "ibug68" or topo.landmarks68 is None or not topo.contour_substitutes:
        return {}
    mean = model.mean.detach().cpu().numpy()
    allowed = np.flatnonzero(topo.regions.get("face_and_head", np.ones(topo.num_vertices, bool)))
    pts = mean[allowed]
    out: dict[int, np.ndarray] = {}
    for k, sub in topo.contour_substitutes.items():
        a, b = int(topo.landmarks68[k]), int(sub)
        if a == b:
            continue
        pa, pb = mean[a], mean[b]
        seg = pb - pa
        t = np.clip(((pts - pa) @ seg) / max(seg @ seg, 1e-9), 0.0, 1.0)
        dist = np.linalg.norm(pts - (pa + t[:, None] * seg), axis=1)
        near = allowed[dist < band]
        out[k] = np.concatenate([[a, b], near[(near != a) & (near != b)]]).astype(np.int64)
    return out

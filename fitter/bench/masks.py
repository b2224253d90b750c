"""Part masks for the synthetic benchmark: oracle masks rendered from the ground truth, and corrupted ones.

Oracle masks come from the true mesh and the model's own part labels (what a perfect parser would give,
by the model's definition of the parts); corrupted masks damage each part independently by erosion,
dilation or a shift, to measure how PRDL degrades with a poor parser.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..model.morphable import MorphableModel
from ..observe.seg_landmarks import brow_line
from ..observe.segmentation import PART_NAMES, PartMasks
from ..observe.types import FaceObservation
from ..synth.scenes import RenderedCase, appearance


def oracle_masks(model: MorphableModel, rendered: RenderedCase, true_landmarks: np.ndarray) -> PartMasks:
    """Per-pixel part of the true mesh (the corner label with the largest barycentric weight). In a wild
    render the face pixels hidden by an occluder are what a perfect parser reports: occluded, no part."""
    app = appearance(model)
    labels_v = np.concatenate([model.topology.vertex_labels["parts"], [0]]).astype(np.int64)  # + mouth cap
    tri = rendered.triangle_id
    h, w = tri.shape
    out = np.zeros((h, w), np.uint8)
    covered = tri >= 0
    corner_labels = labels_v[app.triangles[tri[covered]]]  # (N, 3)
    bary = rendered.barycentrics[covered]
    score = np.zeros((len(corner_labels), len(PART_NAMES) + 1))
    for c in range(3):
        np.add.at(score, (np.arange(len(score)), corner_labels[:, c]), bary[:, c])
    out[covered] = score.argmax(1)
    occlusion = np.zeros((h, w), bool) if rendered.occlusion is None else rendered.occlusion.copy()
    out[occlusion] = 0
    face = FaceObservation(landmarks=true_landmarks, landmark_format="mediapipe478",
                           bbox=np.r_[true_landmarks.min(0), true_landmarks.max(0)])
    return PartMasks(labels=out, occlusion=occlusion, region=(0, 0, w, h), source="oracle",
                     weak=False, brow_line=brow_line(face))


def corrupt_masks(masks: PartMasks, seed: int, strength: float = 0.02) -> PartMasks:
    """Each part eroded, dilated or shifted by about ``strength`` of the face size (seeded)."""
    rng = np.random.default_rng(seed)
    labels = masks.labels
    ys, xs = np.nonzero(labels > 0)
    size = max(np.ptp(xs), np.ptp(ys)) if len(xs) else 100
    amount = max(1, int(round(strength * size)))
    out = np.zeros_like(labels)
    order = [len(PART_NAMES) - 1] + list(range(len(PART_NAMES) - 1))  # skin first, parts drawn over it
    for k in order:
        part = (labels == k + 1).astype(np.uint8)
        if not part.any():
            continue
        kind = rng.choice(["erode", "dilate", "shift"])
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * amount + 1, 2 * amount + 1))
        if kind == "erode" and k != len(PART_NAMES) - 1:
            part = cv2.erode(part, kernel)
        elif kind == "dilate":
            part = cv2.dilate(part, kernel)
        else:
            dx, dy = rng.integers(-amount, amount + 1, 2)
            part = np.roll(part, (int(dy), int(dx)), axis=(0, 1))
        out[part > 0] = k + 1
    return PartMasks(labels=out, occlusion=masks.occlusion.copy(), region=masks.region,
                     source="oracle-corrupted", weak=False, brow_line=masks.brow_line)

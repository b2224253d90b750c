"""Where a face crop shows background: pixels no face skin may cover.

The part masks say where the face is, but when they are drawn from the landmarks their outline is the
detector's (on a turned face the far cheek's contour lies on the surface, not on the silhouette), so a fit that
only agrees with them can bulge past the face's real outline for free. This module reads the outline from the
pixels instead: OpenCV's GrabCut (colour models of face and surroundings with a contrast-sensitive smoothness
term) is seeded with the segmented skin as sure face and the rest of the face region as probable face; what it
leaves outside the face, connected to the crop's border and outside every segmented part, is background.
Hair, ears and the neck usually fall on either side of the cut, which is why the caller compares the
background with the front of the face only (``narrow_face``), which none of them covers.
"""
from __future__ import annotations

import cv2
import numpy as np

MIN_SEED_PIXELS = 50  # fewer sure-face or probable-background pixels than this: GrabCut has no colour model
SEED_EROSION = 5  # px: the sure-face seed stays this far inside the segmented skin (its outline is uncertain)
# GrabCut starts its colour models from k-means on OpenCV's random generator (one per thread, never reset), so a
# crop's outline depended on how many GrabCut calls came before it in the process: up to 10 % of its background
# pixels moved, and a photo fitted after another in one `facefit fit` run got another mesh than fitted alone
# (astronaut.png after angry.jpg: 0.14 mm RMS, 0.47 mm at most). Seeded before every call, one crop reads one outline.
GRABCUT_SEED = 0


def exterior(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of ``mask`` connected (4-neighbourhood) to the image border."""
    labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)[1]
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0]) & mask


def face_background(image: np.ndarray, face: np.ndarray, skin: np.ndarray, iterations: int = 5) -> np.ndarray:
    """(H, W) bool background of a face crop (all False when there is too little to model).

    ``image``: (H, W, 3) uint8 sRGB; ``face``: every segmented part of the face (never background); ``skin``:
    the segmented skin (the sure-face seed)."""
    seed = cv2.erode(skin.astype(np.uint8), np.ones((SEED_EROSION, SEED_EROSION), np.uint8)) > 0
    if seed.sum() < MIN_SEED_PIXELS or (~face).sum() < MIN_SEED_PIXELS:
        return np.zeros(face.shape, bool)
    mask = np.full(face.shape, cv2.GC_PR_BGD, np.uint8)
    mask[face] = cv2.GC_PR_FGD
    mask[seed] = cv2.GC_FGD
    background_model, face_model = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(GRABCUT_SEED)  # reproducible: see GRABCUT_SEED (this resets the calling thread's OpenCV RNG)
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, None, background_model, face_model, iterations,
                cv2.GC_INIT_WITH_MASK)
    outside = (mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)
    return exterior(outside) & ~face

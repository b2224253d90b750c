"""Real faces cut out of the example photos, to compose images of several people."""
from __future__ import annotations

import cv2
import numpy as np

from fitter.io import load_image
from fitter.observe import observe_image
from paths import EXAMPLES


def face_square(name: str, size: int, cache) -> np.ndarray:
    """The photo's face in a square twice its landmarks' extent, ``size`` pixels wide."""
    image = load_image(EXAMPLES / name)
    pts = observe_image(image, largest=True, cache_dir=cache).faces[0].landmarks
    centre, half = pts.mean(0), float(np.ptp(pts, 0).max())
    x0, y0 = (centre - half).astype(int)
    side = int(2 * half)
    padded = cv2.copyMakeBorder(image.rgb, side, side, side, side, cv2.BORDER_REPLICATE)
    return cv2.resize(padded[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side], (size, size),
                      interpolation=cv2.INTER_AREA)

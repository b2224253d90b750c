"""Small helpers on boxes and image regions shared by the detector backends (pure numpy / OpenCV).

Boxes are ``(x0, y0, x1, y1)`` in pixels, origin at the top-left pixel's corner. A *region* is a box of
the full-resolution image that a detector sees resampled to ``out_size``; points the detector reports in
normalised coordinates ``u, v`` in [0, 1] of its input map back to ``x0 + u * (x1 - x0)``, exactly,
whatever the resampling.
"""
from __future__ import annotations

import numpy as np

PAD_VALUE = 128  # grey used where a region extends past the image border


def box_area(b: np.ndarray) -> float:
    return float(max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_overlap_min(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area (1 when one box lies inside the other)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min(box_area(a), box_area(b))
    return ix * iy / small if small > 0 else 0.0


def same_face(a: np.ndarray, b: np.ndarray, iou: float) -> bool:
    """Whether two face boxes describe one face: IoU above ``iou``, or one box mostly (70 %) inside the
    other (a partial view of a face, or a face-like pattern inside a face: faces do not nest)."""
    return box_iou(a, b) > iou or box_overlap_min(a, b) > 0.7


def points_box(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float32)
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], np.float32)


def square_region(box: np.ndarray, factor: float) -> np.ndarray:
    """Integer square region centred on ``box`` with side ``factor * max(box side)`` (may leave the image)."""
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    side = max(8, int(np.ceil(factor * max(box[2] - box[0], box[3] - box[1]))))
    x0, y0 = int(np.floor(cx - side / 2.0)), int(np.floor(cy - side / 2.0))
    return np.array([x0, y0, x0 + side, y0 + side], np.int64)


def extract_region(rgb: np.ndarray, region: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Pixels of the integer ``region`` (x0, y0, x1, y1) of ``rgb``, grey-padded outside the image and
    resampled to ``out_size`` (width, height): area averaging when shrinking, bicubic when enlarging."""
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in region)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 <= sx0 or sy1 <= sy0:
        crop = np.full((y1 - y0, x1 - x0, rgb.shape[2]), PAD_VALUE, rgb.dtype)
    else:
        crop = rgb[sy0:sy1, sx0:sx1]
        pads = (sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1)
        if any(pads):
            crop = cv2.copyMakeBorder(crop, *pads, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return resize(crop, out_size)


def resize(rgb: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height); area averaging when shrinking, bicubic when enlarging."""
    import cv2

    ow, oh = int(out_size[0]), int(out_size[1])
    h, w = rgb.shape[:2]
    if (w, h) == (ow, oh):
        return np.ascontiguousarray(rgb)
    interp = cv2.INTER_AREA if ow * oh < w * h else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, (ow, oh), interpolation=interp))


def tile_regions(width: int, height: int, tile: int, overlap: float = 0.5) -> list[tuple[int, int, int, int]]:
    """Square tiles of side ``tile`` covering a width x height image with the given fractional overlap
    (the last row/column is flush with the border). A face up to ``tile * overlap`` wide lies wholly
    inside at least one tile."""
    tile = int(min(tile, max(width, height)))
    stride = max(1, int(round(tile * (1.0 - overlap))))

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        s = list(range(0, n - tile + 1, stride))
        if s[-1] != n - tile:
            s.append(n - tile)
        return s

    return [(x, y, x + min(tile, width), y + min(tile, height)) for y in starts(height) for x in starts(width)]

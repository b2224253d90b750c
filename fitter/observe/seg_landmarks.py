"""Facial-part polygons from landmarks: the offline (weaker) segmentation source, and the face geometry that
the parser backend shares with it (eye axis, brow line, facer's five keypoints).

MediaPipe (478 points): the contours come from MediaPipe's own connection lists
(``FaceLandmarksConnections.FACE_LANDMARKS_{FACE_OVAL, LEFT_EYE, RIGHT_EYE, LEFT_EYEBROW, RIGHT_EYEBROW, LIPS,
NOSE}``), read at run time and turned into closed polygons:

- eyes: the lower and the upper lid chain (both run corner to corner) joined into one loop;
- brows: MediaPipe draws a brow as two open chains (its lower and its upper edge); the polygon is the band
  between them (one chain, then the other backwards);
- lips: LIPS holds four corner-to-corner chains: outer upper (through mesh point 0), outer lower (through 17),
  inner upper (through 13) and inner lower (through 14). Upper lip = the band between outer upper and inner
  upper, lower lip = the band between outer lower and inner lower, inner mouth = inner upper + inner lower;
- nose: the convex hull of every NOSE landmark (the bridge chain from mesh point 168 between the eyes down to
  the columella, and the loop around the alae and nostrils). MediaPipe's nose "contour" is an open bridge
  line plus the nostril loop, not an outline, so the hull is the closest closed shape (it includes the sides
  of the bridge, as face parsers label them);
- skin: the face oval (forehead included, up to mesh point 10) minus all of the above.

MediaPipe's ``LEFT_*`` lists are the subject's own left (on the image's right for a face looking at the
camera); checked on every photo of examples/images, see docs/segmentation.md.

iBUG 68 points (jaw 0-16 from the subject's right ear to the left one, brows 17-21 right / 22-26 left, nose
bridge 27-30, nose base 31-35, eyes 36-41 right / 42-47 left, outer lips 48-59, inner lips 60-67; "right" is
the subject's right, on the image's left): a brow is one line along its upper edge, thickened towards the eye
by ``IBUG_BROW_THICKNESS`` of the eye distance; the nose is the hull of 27-35; the skin is the jaw line closed
along the brows' upper edge, so this scheme has **no forehead skin**.
"""
from __future__ import annotations

import threading

import numpy as np

from .types import FaceObservation

# part index (PART_NAMES order); PartMasks.labels stores index + 1
LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW, NOSE, UPPER_LIP, LOWER_LIP, SKIN = range(8)

IBUG_BROW_THICKNESS = 0.09  # brow height (towards the eye) as a fraction of the eye-centre distance (iBUG 68)

# MediaPipe canonical-mesh indices used to name chains and keypoints
_MP_UPPER_OUTER, _MP_LOWER_OUTER, _MP_UPPER_INNER, _MP_LOWER_INNER = 0, 17, 13, 14
_MP_IRIS_RIGHT, _MP_IRIS_LEFT = 468, 473  # iris centres (subject's right / left)
_MP_NOSE_TIP, _MP_MOUTH_RIGHT, _MP_MOUTH_LEFT = 1, 61, 291

# iBUG 68 index lists
_IB = {
    "jaw": list(range(0, 17)),
    "right_brow": list(range(17, 22)),
    "left_brow": list(range(22, 27)),
    "nose": list(range(27, 36)),
    "right_eye": list(range(36, 42)),
    "left_eye": list(range(42, 48)),
    "upper_lip": [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60],
    "lower_lip": [54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64],
    "inner_mouth": list(range(60, 68)),
}

_TOPOLOGY: dict | None = None
_TOPOLOGY_LOCK = threading.Lock()


# -- MediaPipe connection lists -> chains ---------------------------------------------------------------
def _paths(connections) -> list[list[int]]:
    """Split MediaPipe's ordered edge list into paths: an edge continues the current path when it starts
    where the previous edge ended."""
    paths: list[list[int]] = []
    for c in connections:
        a, b = int(c.start), int(c.end)
        if paths and paths[-1][-1] == a:
            paths[-1].append(b)
        else:
            paths.append([a, b])
    return paths


def _loop(chain_a: list[int], chain_b: list[int]) -> list[int]:
    """One closed index loop from two chains that share both ends (an eye's lower and upper lid)."""
    a, b = list(chain_a), list(chain_b)
    if b[0] == a[-1]:
        tail = b
    elif b[-1] == a[-1]:
        tail = b[::-1]
    else:
        raise ValueError(f"chains {a} and {b} do not share an end")
    loop = a + tail[1:]
    return loop[:-1] if loop[-1] == loop[0] else loop


def mediapipe_topology() -> dict:
    """MediaPipe's part contours as index lists, built once from ``FaceLandmarksConnections``.

    ``oval``, ``left_eye``, ``right_eye``, ``inner_mouth``: closed index loops; ``left_brow``, ``right_brow``,
    ``upper_lip``, ``lower_lip``: pairs of open chains (joined per face by :func:`join_band`); ``nose``: the
    index set whose convex hull is the nose."""
    global _TOPOLOGY
    with _TOPOLOGY_LOCK:
        if _TOPOLOGY is not None:
            return _TOPOLOGY
        from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections as C

        def chains(name: str, count: int | None = None) -> list[list[int]]:
            ch = _paths(getattr(C, f"FACE_LANDMARKS_{name}"))
            if count is not None and len(ch) != count:
                raise RuntimeError(f"MediaPipe's FACE_LANDMARKS_{name} has {len(ch)} chains, expected {count}")
            return ch

        oval = chains("FACE_OVAL", 1)[0]
        if oval[0] != oval[-1]:
            raise RuntimeError("MediaPipe's FACE_LANDMARKS_FACE_OVAL is not a closed loop")
        lips = chains("LIPS", 4)

        def lip(index: int) -> list[int]:
            found = [c for c in lips if index in c]
            if len(found) != 1:
                raise RuntimeError(f"MediaPipe's lip chains do not single out mesh point {index}")
            return found[0]

        outer_up, outer_lo = lip(_MP_UPPER_OUTER), lip(_MP_LOWER_OUTER)
        inner_up, inner_lo = lip(_MP_UPPER_INNER), lip(_MP_LOWER_INNER)
        _TOPOLOGY = {
            "oval": oval[:-1],
            "left_eye": _loop(*chains("LEFT_EYE", 2)),
            "right_eye": _loop(*chains("RIGHT_EYE", 2)),
            "left_brow": chains("LEFT_EYEBROW", 2),
            "right_brow": chains("RIGHT_EYEBROW", 2),
            "upper_lip": [outer_up, inner_up],
            "lower_lip": [outer_lo, inner_lo],
            "inner_mouth": _loop(inner_up, inner_lo),
            "nose": sorted({i for c in chains("NOSE") for i in c}),
        }
        return _TOPOLOGY


# -- face geometry shared by both backends -------------------------------------------------------------
def eye_centres(face: FaceObservation) -> tuple[np.ndarray, np.ndarray]:
    """(subject's right eye centre, subject's left eye centre) in full-image pixels."""
    p = face.landmarks.astype(np.float64)
    if face.landmark_format == "ibug68":
        return p[36:42].mean(0), p[42:48].mean(0)
    if len(p) > _MP_IRIS_LEFT:
        return p[_MP_IRIS_RIGHT], p[_MP_IRIS_LEFT]
    topo = mediapipe_topology()  # a 468-point mesh without irises
    return p[topo["right_eye"]].mean(0), p[topo["left_eye"]].mean(0)


def mouth_corners(face: FaceObservation) -> tuple[np.ndarray, np.ndarray]:
    """(subject's right mouth corner, subject's left mouth corner)."""
    p = face.landmarks.astype(np.float64)
    if face.landmark_format == "ibug68":
        return p[48], p[54]
    return p[_MP_MOUTH_RIGHT], p[_MP_MOUTH_LEFT]


def nose_tip(face: FaceObservation) -> np.ndarray:
    p = face.landmarks.astype(np.float64)
    return p[30] if face.landmark_format == "ibug68" else p[_MP_NOSE_TIP]


def five_points(face: FaceObservation) -> np.ndarray:
    """The five keypoints facer's parsers align with, in RetinaFace's order: subject's right eye, left eye,
    nose tip, right mouth corner, left mouth corner (for a face looking at the camera: the image-left eye
    first, as in facer's template). (5, 2) float32 full-image pixels."""
    re, le = eye_centres(face)
    rm, lm = mouth_corners(face)
    return np.stack([re, le, nose_tip(face), rm, lm]).astype(np.float32)


def face_axes(face: FaceObservation) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in image coordinates: ``u`` from the subject's right eye to the left one, ``n`` at right
    angles to it, pointing to the mouth."""
    re, le = eye_centres(face)
    u = le - re
    norm = np.linalg.norm(u)
    u = u / norm if norm > 1e-6 else np.array([1.0, 0.0])
    n = np.array([-u[1], u[0]])  # u turned towards +y (down) for an upright face
    rm, lm = mouth_corners(face)
    if np.dot((rm + lm) / 2 - (re + le) / 2, n) < 0:
        n = -n
    return u, n


def brow_line(face: FaceObservation) -> np.ndarray:
    """``(px, py, nx, ny)``: a line along the brows' upper edge, parallel to the eye axis, through the mean of
    the upper brow contour points; ``n`` points to the mouth, so a pixel centre ``c`` lies below the brows
    when ``(c - p) . n >= 0``."""
    _, n = face_axes(face)
    p = face.landmarks.astype(np.float64)
    if face.landmark_format == "ibug68":
        upper = p[17:27]  # iBUG brow points trace the upper edge
    else:
        topo = mediapipe_topology()
        # of each brow's two chains, the upper one is the one further from the mouth
        upper = np.concatenate([min((p[c] for c in topo[side]), key=lambda q: float(np.mean(q @ n)))
                                for side in ("left_brow", "right_brow")])
    point = upper.mean(0)
    return np.array([point[0], point[1], n[0], n[1]], np.float32)


# -- polygons ------------------------------------------------------------------------------------------
def join_band(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A closed polygon around the band between two open chains of points (a brow's two edges, a lip's outer
    and inner contour): ``a``, then ``b`` run in whichever direction makes the two closing edges (``a``'s end
    to ``b``'s start, ``b``'s end to ``a``'s start) shortest, so the outline never crosses itself."""
    def gap(tail: np.ndarray) -> float:
        return float(np.linalg.norm(a[-1] - tail[0]) + np.linalg.norm(tail[-1] - a[0]))

    tail = b[::-1] if gap(b[::-1]) <= gap(b) else b
    return np.concatenate([a, tail])


def _hull(points: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def part_polygons(face: FaceObservation) -> dict[str, np.ndarray]:
    """Full-image polygons ``(K, 2)`` float64 by name: ``oval``, ``inner_mouth`` and the parts but skin."""
    p = face.landmarks.astype(np.float64)
    if face.landmark_format == "ibug68":
        re, le = eye_centres(face)
        thick = IBUG_BROW_THICKNESS * float(np.linalg.norm(le - re))
        _, n = face_axes(face)
        profile = np.array([0.55, 0.9, 1.0, 1.0, 0.8])  # from the lateral end (thin) to the medial one
        polys = {}
        for side in ("right_brow", "left_brow"):
            top = p[_IB[side]]  # right brow 17-21 runs lateral -> medial, left brow 22-26 medial -> lateral
            prof = profile if side == "right_brow" else profile[::-1]
            polys[side] = np.concatenate([top, (top + thick * prof[:, None] * n)[::-1]])
        polys["oval"] = np.concatenate([p[_IB["jaw"]], p[26:16:-1]])  # jaw, closed along the brows' top
        polys["nose"] = _hull(p[_IB["nose"]])
        for k in ("right_eye", "left_eye", "upper_lip", "lower_lip", "inner_mouth"):
            polys[k] = p[_IB[k]]
        return polys
    topo = mediapipe_topology()
    polys = {k: p[topo[k]] for k in ("oval", "left_eye", "right_eye", "inner_mouth")}
    for k in ("left_brow", "right_brow", "upper_lip", "lower_lip"):
        a, b = topo[k]
        polys[k] = join_band(p[a], p[b])
    polys["nose"] = _hull(p[topo["nose"]])
    return polys


# painting order: a later polygon wins where two overlap; None paints "no part" (the inner mouth)
_PAINT = [("oval", SKIN), ("nose", NOSE), ("right_brow", RIGHT_BROW), ("left_brow", LEFT_BROW),
          ("right_eye", RIGHT_EYE), ("left_eye", LEFT_EYE), ("upper_lip", UPPER_LIP), ("lower_lip", LOWER_LIP),
          ("inner_mouth", None)]


def fill_polygon(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: pixels whose centres ``(j + 0.5, i + 0.5)`` lie inside ``poly`` (K, 2), in the
    coordinates of the mask (even-odd rule; exact, unlike cv2.fillPoly, which also sets the pixels its
    outline touches)."""
    h, w = shape
    out = np.zeros((h, w), bool)
    if len(poly) < 3 or h == 0 or w == 0:
        return out
    a = np.asarray(poly, np.float64)
    b = np.roll(a, -1, axis=0)
    ylo, yhi = max(0, int(np.floor(a[:, 1].min() - 0.5))), min(h, int(np.ceil(a[:, 1].max())) + 1)
    if ylo >= yhi:
        return out
    yc = np.arange(ylo, yhi)[:, None] + 0.5  # (R, 1) row centres
    ya, yb = a[None, :, 1], b[None, :, 1]
    spans = (np.minimum(ya, yb) <= yc) & (yc < np.maximum(ya, yb))  # half-open: a vertex counts once
    dy = np.where(ya == yb, 1.0, yb - ya)
    xs = np.where(spans, a[None, :, 0] + (yc - ya) * (b[None, :, 0] - a[None, :, 0]) / dy, np.inf)
    xs.sort(axis=1)
    count = spans.sum(1)
    diff = np.zeros((yhi - ylo, w + 1), np.int32)
    rows = np.arange(yhi - ylo)
    for k in range(0, int(count.max()) - 1, 2):
        ok = count >= k + 2
        start = np.clip(np.ceil(xs[ok, k] - 0.5), 0, w).astype(np.int64)
        end = np.clip(np.ceil(xs[ok, k + 1] - 0.5), 0, w).astype(np.int64)
        keep = end > start
        np.add.at(diff, (rows[ok][keep], start[keep]), 1)
        np.add.at(diff, (rows[ok][keep], end[keep]), -1)
    out[ylo:yhi] = np.cumsum(diff[:, :w], axis=1) > 0
    return out


def polygons_region(polys: dict[str, np.ndarray], size: tuple[int, int], pad: int = 2) -> tuple[int, int, int, int]:
    """Integer region ``(x0, y0, x1, y1)`` around all polygons, clipped to the image (may be empty)."""
    h, w = size
    pts = np.concatenate(list(polys.values()))
    x0 = int(np.clip(np.floor(pts[:, 0].min()) - pad, 0, w))
    y0 = int(np.clip(np.floor(pts[:, 1].min()) - pad, 0, h))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()) + pad, x0, w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()) + pad, y0, h))
    return x0, y0, x1, y1


def rasterise(polys: dict[str, np.ndarray], region: tuple[int, int, int, int]) -> np.ndarray:
    """``(h, w)`` uint8 labels (part index + 1, 0 = none) over ``region``: a pixel takes a polygon's label
    when its centre ``(x0 + j + 0.5, y0 + i + 0.5)`` lies inside the polygon (later polygons of the painting
    order win)."""
    x0, y0, x1, y1 = region
    labels = np.zeros((y1 - y0, x1 - x0), np.uint8)
    if labels.size == 0:
        return labels
    origin = np.array([x0, y0], np.float64)
    for name, part in _PAINT:
        poly = polys.get(name)
        if poly is None:
            continue
        labels[fill_polygon(poly - origin, labels.shape)] = 0 if part is None else part + 1
    return labels


def segment(face: FaceObservation, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Labels of one face from its landmarks, over the region around its polygons, and that region."""
    polys = part_polygons(face)
    region = polygons_region(polys, size)
    return rasterise(polys, region), region

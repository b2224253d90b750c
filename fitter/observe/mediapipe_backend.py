"""MediaPipe face landmarker (Tasks API): 478 landmarks, 52 blendshape scores and a 4x4 face transform.

One landmarker per option set is created lazily and reused for the life of the process (creating one
loads the bundle and builds a graph). It is guarded by a lock (one ``detect`` at a time), re-created in a
forked child, and closed explicitly at interpreter exit (left to the garbage collector at exit, mediapipe
prints a TypeError traceback). :func:`close_landmarkers` closes them earlier.

Multi-face search: MediaPipe's face detector is short-range (it sees the whole input at 128x128), so faces
smaller than about a fifth of the image are missed (two of the five faces of a typical group photo).
After the whole-image pass, overlapping square tiles (half and quarter of the long side, 50 % overlap) are
run through the same landmarker; every face a tile finds that is not already known is re-observed on a
square crop of the full-resolution image centred on it (so it is never cut by a tile border), and kept
unless it duplicates a known face. See docs/observations.md for the measured effect.

Mirror averaging (setting ``mirror``, on by default): every face kept is observed again in the mirror image of
the pixels it was found in, and its landmarks become the mean of the two (mapped back with the detector's own
left/right pairing, ``assets/mediapipe_mirror.npz``): the landmarker's error is not mirror-symmetric, and part of
it cancels.

MediaPipe's C++ side logs to the process's stderr (``W0000 ... face_landmarker_graph.cc``, ``INFO: Created
TensorFlow Lite XNNPACK delegate``) while a landmarker is created and first run, whatever GLOG_minloglevel
says. Those lines mean nothing to a user, so file descriptor 2 is pointed at ``$FACEFIT_NATIVE_LOG`` (the
CLI's ``--verbose`` sets it to a file in the output folder) or at the null device around exactly those calls.
"""
from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from fitter.assets import asset_path

from .geometry import (
    PAD_VALUE,
    box_iou,
    extract_region,
    points_box,
    resize,
    same_face,
    square_region,
    tile_regions,
)
from .types import FaceObservation

BUNDLE = "face_landmarker.task"
MIRROR_ASSET = "mediapipe_mirror.npz"  # which landmark is which in the mirror image (assets/build/)
DETECTOR_NAME = "mediapipe"

DEFAULTS: dict = {
    "max_faces": 20,  # most faces returned per image
    "min_detection_confidence": 0.5,  # MediaPipe face detector threshold
    "min_presence_confidence": 0.5,  # MediaPipe landmark model's face-presence threshold
    "search": "tiles",  # "tiles": whole image, then tiles for small faces; "none": whole image only
    "tile_levels": 2,  # tiles of 1/2, 1/4, ... of the long side
    "max_side": 1920,  # detection runs on the image shrunk to this long side (landmarks map back)
    "min_side": 256,  # ... or enlarged to this long side (tiny images)
    "crop_factor": 2.0,  # side of the re-observation crop, in face sizes
    "dedupe_iou": 0.3,  # boxes overlapping more than this are one face
    "min_visible": 0.25,  # faces with fewer of their landmarks inside the image are dropped
    "mirror": True,  # average each face's landmarks with those found on its mirror image (mapped back)
    "rotated": True,  # find the faces of an image stored upside down or on its side (EXIF orientation lost): _way_up
    "level_above_deg": 25.0,  # a face whose eye line is tilted more is read again with it level (0: off): _levelled
}
SEARCH_MODES = ("tiles", "none")
# How faces are searched for beyond the settings: raise it when that changes, so that cached observations made
# the old way are not reused (2: a second pass with a border, the way-up check, strip tiles; 3: images on their
# side; 4: tilted faces read level; 2026-12-06).
SEARCH_REVISION = 4
NATIVE_LOG_ENV = "FACEFIT_NATIVE_LOG"  # file that MediaPipe's C++ log lines are appended to (unset: discarded)
_MIN_TILE = 128  # px of the detection image: the detector's own input size; smaller tiles add nothing
_REFINE_BELOW = 192  # faces smaller than this in a shrunk detection image are re-observed at full res


# -- MediaPipe's native log lines -----------------------------------------------------------------------
_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_saved_stderr: int | None = None


@contextmanager
def native_logs_quieted():
    """Send what native code writes to fd 2 to ``$FACEFIT_NATIVE_LOG`` (or nowhere) for the duration.

    Nested and concurrent uses share one redirection: the first one in saves the real stderr, the last one
    out restores it (two independent redirections could otherwise restore each other's targets).
    """
    global _quiet_depth, _saved_stderr
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            target = os.environ.get(NATIVE_LOG_ENV) or os.devnull
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError:
                fd = os.open(os.devnull, os.O_WRONLY)
            _flush_stderr()
            _saved_stderr = os.dup(2)
            os.dup2(fd, 2)
            os.close(fd)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_stderr is not None:
                _flush_stderr()
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)
                _saved_stderr = None


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):  # no stderr, or a closed one
        pass


# -- landmarker pool -----------------------------------------------------------------------------------
class _Landmarker:
    """A FaceLandmarker owned by one process, used by one thread at a time."""

    def __init__(self, max_faces: int, min_detection: float, min_presence: float) -> None:
        from mediapipe.tasks.python import BaseOptions, vision


        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(asset_path(BUNDLE))),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=int(max_faces),
            min_face_detection_confidence=float(min_detection),
            min_face_presence_confidence=float(min_presence),
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.quiet_runs = 1  # MediaPipe's graph threads log while they start: the first detect is quieted too
        with native_logs_quieted():
            self.task = vision.FaceLandmarker.create_from_options(options)

    def detect(self, rgb: np.ndarray):
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb, dtype=np.uint8))
        with self.lock:
            if self.task is None:
                raise RuntimeError("the MediaPipe face landmarker was closed")
            if self.quiet_runs <= 0:
                return self.task.detect(image)
            self.quiet_runs -= 1
            with native_logs_quieted():
                return self.task.detect(image)

    def close(self) -> None:
        with self.lock:
            if self.task is not None:
                self.task.close()
                self.task = None


_POOL: dict[tuple, _Landmarker] = {}
_INHERITED: list[_Landmarker] = []  # landmarkers of a parent process: never touched (nor collected) here
_POOL_LOCK = threading.Lock()


def get_landmarker(max_faces: int = 20, min_detection: float = 0.5, min_presence: float = 0.5) -> _Landmarker:
    """The process-wide landmarker for these options (created on first use)."""
    key = (int(max_faces), float(min_detection), float(min_presence))
    with _POOL_LOCK:
        lm = _POOL.get(key)
        if lm is not None and lm.pid != os.getpid():  # forked child: the parent's graph threads are gone
            _INHERITED.append(lm)
            lm = None
        if lm is None or lm.task is None:
            lm = _Landmarker(*key)
            _POOL[key] = lm
        return lm


@atexit.register
def close_landmarkers() -> None:
    """Close every landmarker this process created (safe to call any time; they re-open on demand)."""
    with _POOL_LOCK:
        for key, lm in list(_POOL.items()):
            if lm.pid == os.getpid():
                lm.close()
                del _POOL[key]


# -- one landmarker pass over one region ---------------------------------------------------------------
@dataclass
class _Face:
    landmarks: np.ndarray  # (478, 2) full-resolution pixels
    z: np.ndarray  # (478,) pixels
    blendshapes: dict[str, float]
    transform: np.ndarray  # (4, 4)
    roi: np.ndarray  # (4,) the full-resolution region the landmarker saw
    box: np.ndarray  # (4,) landmark bounding box

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _observe_region(lm: _Landmarker, pixels: np.ndarray, roi: np.ndarray) -> list[_Face]:
    """Run the landmarker on ``pixels``, which show the full-resolution region ``roi`` (x0, y0, x1, y1)."""
    result = lm.detect(pixels)
    x0, y0, x1, y1 = (float(v) for v in roi)
    faces = []
    for k, marks in enumerate(result.face_landmarks):
        uvz = np.array([[p.x, p.y, p.z] for p in marks], np.float64)
        pts = np.stack([x0 + uvz[:, 0] * (x1 - x0), y0 + uvz[:, 1] * (y1 - y0)], axis=1).astype(np.float32)
        z = (uvz[:, 2] * (x1 - x0)).astype(np.float32)  # MediaPipe's z is scaled like x
        shapes = {}
        if result.face_blendshapes and k < len(result.face_blendshapes):
            shapes = {c.category_name: float(c.score) for c in result.face_blendshapes[k]}
        transform = np.full((4, 4), np.nan, np.float32)
        if result.facial_transformation_matrixes and k < len(result.facial_transformation_matrixes):
            transform = np.asarray(result.facial_transformation_matrixes[k], np.float32).reshape(4, 4)
        faces.append(_Face(pts, z, shapes, transform, np.asarray(roi, np.float32), points_box(pts)))
    return faces


def _crop_pixels(rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    side = int(region[2] - region[0])
    out = int(min(max(side, 256), 512))  # the landmark model sees faces at 256 px; no gain above
    return extract_region(rgb, region, (out, out))


def _refine(lm: _Landmarker, rgb: np.ndarray, face: _Face, crop_factor: float, iou: float) -> _Face | None:
    """Re-observe ``face`` on a square full-resolution crop centred on it; None if the crop loses it."""
    region = square_region(face.box, crop_factor)
    found = _observe_region(lm, _crop_pixels(rgb, region), region)
    best = max(found, key=lambda f: box_iou(f.box, face.box), default=None)
    if best is None or not same_face(best.box, face.box, iou):
        return None
    return best


# -- the detector --------------------------------------------------------------------------------------
def check_settings(settings: dict) -> dict:
    """Defaults filled in and values checked; raises TypeError/ValueError naming the bad setting."""
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"unknown MediaPipe setting(s) {unknown}; valid: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **settings}
    if s["search"] not in SEARCH_MODES:
        raise ValueError(f"search must be one of {SEARCH_MODES}, got {s['search']!r}")
    for k in ("mirror", "rotated"):
        if not isinstance(s[k], (bool, np.bool_)):
            raise TypeError(f"{k} must be true or false, got {s[k]!r}")
        s[k] = bool(s[k])
    for k in ("max_faces", "tile_levels", "max_side", "min_side"):
        s[k] = int(s[k])
    for k in ("min_detection_confidence", "min_presence_confidence", "crop_factor", "dedupe_iou", "min_visible",
              "level_above_deg"):
        s[k] = float(s[k])
    if (s["max_faces"] < 1 or s["max_side"] < 64 or s["min_side"] < 1 or s["tile_levels"] < 0
            or not 0.0 <= s["level_above_deg"] <= 90.0):
        raise ValueError(f"invalid MediaPipe settings {s}")
    return s


def detection_scale(height: int, width: int, max_side: int, min_side: int) -> float:
    """Scale from the full image to the image the whole-image pass sees."""
    long = max(height, width)
    if long > max_side:
        return max_side / long
    if long < min_side:
        return min_side / long
    return 1.0


def detect(rgb: np.ndarray, settings: dict, largest: bool = False,
           prominent: bool = False) -> tuple[list[FaceObservation], list[str]]:
    """Every face in the full-resolution, EXIF-oriented ``rgb`` (H, W, 3) uint8, largest first.

    ``settings`` must come from :func:`check_settings`. With ``largest`` the tile search is skipped when the
    whole-image pass already found a face (small faces cannot be the largest), and one face is returned. With
    ``prominent`` the tile search is skipped the same way but every face of the whole-image pass is returned (a
    clip's frames: the person followed may not be the largest in every frame).
    """
    s = settings
    h, w = rgb.shape[:2]
    lm = get_landmarker(s["max_faces"], s["min_detection_confidence"], s["min_presence_confidence"])
    warns: list[str] = []
    skip_tiles = largest or prominent
    det, faces, bordered = _search(lm, rgb, s, skip_tiles)
    turns = _way_up(lm, rgb, det, s, faces, bordered) if s["rotated"] else 0
    if turns:
        upright = np.ascontiguousarray(np.rot90(rgb, turns))
        upright_det, upright_faces, _ = _search(lm, upright, s, skip_tiles)
        if upright_faces:
            rgb, det, faces = upright, upright_det, upright_faces
            # the warning says which way the face itself lies: a face rolled near 45 deg can be found in a view
            # that has it on its side (MediaPipe reads it there all the same)
            own = turns_upright(direction_back(face_down(faces[0].landmarks), turns))
            warns.append(TURNED[own or turns])
        else:
            turns = 0
    faces = [_read_well(lm, rgb, det, f, s) for f in faces[: (1 if largest else s["max_faces"])]]
    out = []
    for f in faces:
        seen = _inside(f.landmarks, rgb.shape[1], rgb.shape[0]).astype(np.float32)
        face = FaceObservation(landmarks=f.landmarks, landmark_format="mediapipe478", bbox=f.box, score=1.0,
                               landmark_weights=seen, landmarks_z=f.z,
                               blendshapes=f.blendshapes, transform=f.transform, detector=DETECTOR_NAME, roi=f.roi)
        face = turned_back(face, w, h, turns) if turns else face
        outside = int((face.landmark_weights == 0).sum())
        if outside:
            warns.append(f"a face at {np.round(face.bbox).astype(int).tolist()} extends past the image border: "
                         f"{outside} landmarks outside it have weight 0")
        out.append(face)
    return out, warns


def _found(lm: _Landmarker, rgb: np.ndarray, s: dict, skip_tiles: bool) -> tuple[np.ndarray, list[_Face]]:
    """The detection image and the faces found in ``rgb`` that are visible enough, largest first (``skip_tiles``:
    no tile search when the whole-image pass found a face)."""
    h, w = rgb.shape[:2]
    # 1. the whole image, shrunk (huge images) or enlarged (tiny ones)
    scale = detection_scale(h, w, s["max_side"], s["min_side"])
    dw, dh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    det = resize(rgb, (dw, dh)) if scale != 1.0 else rgb
    whole = np.array([0, 0, w, h], np.float32)
    faces: list[_Face] = []
    for f in _observe_region(lm, det, whole):
        if scale < 1.0 and f.size * scale < _REFINE_BELOW:  # more detail exists at full resolution
            f = _refine(lm, rgb, f, s["crop_factor"], s["dedupe_iou"]) or f
        _add(faces, f, s["dedupe_iou"])

    # 2. tiles of the detection image for faces too small for the whole-image pass
    if s["search"] == "tiles" and not (skip_tiles and faces):
        long, short = max(dw, dh), min(dw, dh)
        sizes = [int(np.ceil(long / 2**level)) for level in range(1, s["tile_levels"] + 1)]
        if long > 2 * short:  # a strip (panorama): tiles as wide as it is tall, or its faces stay specks in them
            sizes.append(short)
        for tile in sorted(set(sizes), reverse=True):
            if tile < _MIN_TILE:
                break
            for tx0, ty0, tx1, ty1 in tile_regions(dw, dh, tile, overlap=0.5):
                if len(faces) >= s["max_faces"]:
                    break
                roi = np.array([tx0 * w / dw, ty0 * h / dh, tx1 * w / dw, ty1 * h / dh], np.float32)
                if any(_covered(roi, f.box) > 0.7 for f in faces):
                    continue  # mostly inside a known face: faces do not nest, nothing new to find here
                for cand in _observe_region(lm, det[ty0:ty1, tx0:tx1], roi):
                    if any(same_face(cand.box, f.box, s["dedupe_iou"]) for f in faces):
                        continue
                    refined = _refine(lm, rgb, cand, s["crop_factor"], s["dedupe_iou"])
                    _add(faces, refined if refined is not None else cand, s["dedupe_iou"])

    # 3. visibility filter, order
    kept = [f for f in faces if _inside(f.landmarks, w, h).mean() >= s["min_visible"]]
    return det, sorted(kept, key=lambda f: -_area(f.box))


BORDER = 0.25  # a grey border of this fraction of the long side around an image where nothing was found


def _search(lm: _Landmarker, rgb: np.ndarray, s: dict, skip_tiles: bool) -> tuple[np.ndarray, list[_Face], bool]:
    """The detection image, the faces found (largest first) and whether the border was needed (True also when no
    face was found at all: the way-up check then looks inside the border first)."""
    det, faces = _found(lm, rgb, s, skip_tiles)
    if faces:
        return det, faces, False
    det, faces = _found_with_border(lm, rgb, s)
    return det, faces, True


@dataclass
class View:
    """Pixels a pass sees and the full-resolution size (width, height) of the region they show."""

    pixels: np.ndarray
    width: float
    height: float


def _bordered(rgb: np.ndarray, s: dict) -> tuple[View, np.ndarray, float]:
    """The image inside a grey border of BORDER x its long side at the detection scale of that size; the region
    it shows (full-resolution pixels, beyond the image) and the scale."""
    h, w = rgb.shape[:2]
    pad = int(np.ceil(BORDER * max(h, w)))
    scale = detection_scale(h + 2 * pad, w + 2 * pad, s["max_side"], s["min_side"])
    region = np.array([-pad, -pad, w + pad, h + pad], np.int64)
    size = (max(1, round((w + 2 * pad) * scale)), max(1, round((h + 2 * pad) * scale)))
    return View(extract_region(rgb, region, size), w + 2 * pad, h + 2 * pad), region, scale


def _found_with_border(lm: _Landmarker, rgb: np.ndarray, s: dict) -> tuple[np.ndarray, list[_Face]]:
    """The faces of an image where the first pass found none, observed again with a grey border around it.

    MediaPipe's detector wants some context around a face: on crops of the 9 photos of shared/data/images around
    their faces (the landmarks' box grown by 30 or 10 %, as is, cut by 10 or 20 %: ID photos, dataset crops) it
    missed 14 of 45, with the border 4 (docs/observations.md). Landmarks that fall on the border get weight 0, as
    for a face cut by the image's edge. Returns the detection image of the image itself at the bordered pass's
    scale (what mirror averaging reads regions from) and the faces, largest first."""
    h, w = rgb.shape[:2]
    view, region, scale = _bordered(rgb, s)
    found = _observe_region(lm, view.pixels, region.astype(np.float32))
    kept = [f for f in found if _inside(f.landmarks, w, h).mean() >= s["min_visible"]]
    det = resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale)))) if scale != 1.0 else rgb
    return det, sorted(kept, key=lambda f: -_area(f.box))


# -- which way up ---------------------------------------------------------------------------------------
ROTATED = ("the image is upside down (its EXIF orientation is missing or wrong): its faces were found in the image "
           "turned 180 degrees; rotate the file or fix its EXIF orientation to make this explicit")
_SIDEWAYS = ("the image lies on its side (its EXIF orientation is missing or wrong): its faces were found in the "
             "image turned 90 degrees {}; rotate the file or fix its EXIF orientation to make this explicit")
# the warning of an image found turned by k counter-clockwise quarter turns (np.rot90's k)
TURNED = {1: _SIDEWAYS.format("counter-clockwise"), 2: ROTATED, 3: _SIDEWAYS.format("clockwise")}


def quarter_turns(warnings: list[str]) -> int:
    """The counter-clockwise quarter turns (np.rot90's k, 0-3) an observation's image was found turned by, from
    its warnings: 2 upside down, 1 or 3 on its side, 0 as it is."""
    return next((k for k, line in TURNED.items() if line in warnings), 0)


def was_turned(warnings: list[str]) -> bool:
    """Whether an observation's warnings say its image was found turned (upside down or on its side)."""
    return quarter_turns(warnings) != 0


def face_down(landmarks: np.ndarray) -> np.ndarray:
    """(2,) unit vector from the eyes' middle to the mouth's, in image axes: the face's own 'down'."""
    eyes = (landmarks[33] + landmarks[263]) / 2.0
    mouth = (landmarks[13] + landmarks[14]) / 2.0
    d = (mouth - eyes).astype(np.float64)
    return d / max(float(np.linalg.norm(d)), 1e-9)


def turns_upright(down: np.ndarray) -> int:
    """Counter-clockwise quarter turns (np.rot90's k) that bring a face whose 'down' is ``down`` upright."""
    return int(-round(float(np.degrees(np.arctan2(down[0], down[1]))) / 90.0)) % 4


def direction_back(d: np.ndarray, k: int) -> np.ndarray:
    """A direction (dx, dy) seen in ``np.rot90(image, k)``, in the image's own axes (k = 1: (dx, dy) there is
    (-dy, dx) here)."""
    for _ in range(k % 4):
        d = np.array([-d[1], d[0]])
    return d


def _way_up(lm: _Landmarker, rgb: np.ndarray, det: np.ndarray, s: dict, faces: list[_Face], bordered: bool) -> int:
    """Counter-clockwise quarter turns (0-3) that bring the image upright: 2 upside down, 1 or 3 on its side.

    MediaPipe reads a face turned a quarter either way, often badly, and lays its landmarks out upright on an
    upside-down face (eyes on the mouth, with full confidence) or misses it. So the detection image is observed
    again turned a quarter each way, and the largest face of each turned view, its eyes-to-mouth line brought
    back, votes for the turn that makes it upright, beside the upright pass's largest face. A view that shows
    nothing is tried again inside a grey border (that one first when the upright faces were found only with the
    border, or not at all: a face filling the image). A turn needs two votes, and most:
    - upside down: as it stands (docs/observations.md: of 125 images, wild renders, GRID frames and photos,
      none upright or on its side was turned);
    - on its side: when the image shows no face as it is, the view turned half way votes too; when it shows one,
      the view turned half way must agree besides. A view that has the face upside down reads it "upright" and
      votes for its own turn, and so can a face rolled near 45 deg; the half view has such a face on its side
      and reads it (500 copies of those 125 images turned each way: none upright turned, 2 turned otherwise
      than the truth, a face rolled 49 deg; 225 of the 375 turned copies brought upright, 100 before; the rest
      kept as MediaPipe reads them).
    Reading a face upright matters: MediaPipe's reading of wild renders turned a quarter was 1.5-2.5x further
    from the truth than of the same renders upright (median NME 0.07-0.10 against 0.04; docs/observations.md)."""
    views: dict[bool, View] = {}
    cast: dict[int, int | None] = {}

    def view(border: bool) -> View:
        if border not in views:
            views[border] = _bordered(rgb, s)[0] if border else View(det, rgb.shape[1], rgb.shape[0])
        return views[border]

    def vote(k: int) -> int | None:
        """The turn the largest face of the view turned k quarters votes for (None: no face there)."""
        if k not in cast:
            cast[k] = None
            for border in (bordered, not bordered):
                seen = view(border)
                turned = np.ascontiguousarray(np.rot90(seen.pixels, k))
                size = (seen.height, seen.width) if k % 2 else (seen.width, seen.height)
                found = _observe_region(lm, turned, np.array([0.0, 0.0, *size], np.float32))
                if found:
                    down = face_down(max(found, key=lambda f: _area(f.box)).landmarks)
                    cast[k] = turns_upright(direction_back(down, k))
                    break
        return cast[k]

    votes = [turns_upright(face_down(faces[0].landmarks))] if faces else []
    for k in (1, 3) if faces else (1, 3, 2):
        if any(votes.count(v) >= 2 for v in votes):
            break  # two of at most three votes agree: the last cannot outvote them
        if vote(k) is not None:
            votes.append(cast[k])

    def carried(turn: int) -> bool:
        return votes.count(turn) >= 2 and votes.count(turn) * 2 > len(votes)

    if carried(2):
        return 2
    return next((q for q in (1, 3) if carried(q) and (not faces or vote(2) == q)), 0)


def camera_spin(back: np.ndarray) -> np.ndarray:
    """(4, 4) turn about the camera axis that takes a head transform read in a turned view of the image to the
    image's own: ``back`` (2, 2) maps a direction of that view to the image's (image axes, y down); the
    transform's camera has its y axis up."""
    flip = np.diag([1.0, -1.0])
    spin = np.eye(4)
    spin[:2, :2] = flip @ back @ flip
    return spin


def turned_back(face: FaceObservation, width: int, height: int, turns: int = 2) -> FaceObservation:
    """A face found in ``np.rot90(image, turns)``, in the image's own pixels (``width`` x ``height``).

    One counter-clockwise quarter turn takes the image's (x, y) to (y, W - x) there, so a point (x', y') found
    there is (W - y', x') here (three turns: (y', H - x'); two: (W - x', H - y')). The head transform turns about
    the camera's axis (its x and y axes by the same quarter turns; depths stay, the landmarks' pixel depths too).
    Landmark order and weights stay (the same points, seen turned)."""
    turns %= 4
    if turns == 0:
        return face

    def points(p: np.ndarray) -> np.ndarray:
        x, y = p[..., 0], p[..., 1]
        if turns == 1:
            return np.stack([width - y, x], -1)
        if turns == 3:
            return np.stack([y, height - x], -1)
        return np.stack([width - x, height - y], -1)

    def box(b: np.ndarray | None) -> np.ndarray | None:
        if b is None:
            return None
        corners = points(np.array([[b[0], b[1]], [b[2], b[3]]], np.float64))
        return np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)

    transform = None
    if face.transform is not None:
        quarter = np.array([[0.0, -1.0], [1.0, 0.0]])  # a direction seen one quarter turned, here (direction_back)
        transform = (camera_spin(np.linalg.matrix_power(quarter, turns)) @ face.transform).astype(np.float32)
    return replace(face, landmarks=points(face.landmarks.astype(np.float64)).astype(np.float32), bbox=box(face.bbox),
                   roi=box(face.roi), transform=transform)


# -- tilted faces ---------------------------------------------------------------------------------------
def eye_tilt(landmarks: np.ndarray) -> float:
    """Degrees the line from the face's right eye's outer corner to its left one turns from the image's x axis
    (positive: clockwise on screen)."""
    d = (landmarks[263] - landmarks[33]).astype(np.float64)
    return float(np.degrees(np.arctan2(d[1], d[0])))


def head_roll(transform: np.ndarray) -> float:
    """Degrees the head is rolled about the camera axis by MediaPipe's facial transform (its yaw, pitch, roll
    taken in that order; counter-clockwise on screen positive); 0 without a finite transform."""
    r = np.asarray(transform, np.float64)[:3, :3]
    if not np.isfinite(r).all():
        return 0.0
    return float(np.degrees(np.arctan2(r[1, 0], r[1, 1])))  # R = Ry Rx Rz: row 1 is (cx sz, cx cz, -sx)


def head_yaw(transform: np.ndarray) -> float:
    """Degrees the head is turned left or right by MediaPipe's facial transform (0 without a finite one)."""
    r = np.asarray(transform, np.float64)[:3, :3]
    if not np.isfinite(r).all():
        return 0.0
    return float(np.degrees(np.arctan2(r[0, 2], r[2, 2])))  # R = Ry Rx Rz: column 2 is (sy cx, -sx, cy cx)


ROLL_AGREES_DEG = 10.0  # the head's own roll that must back an eye line's tilt before a face is read again level
LEVEL_MAX_YAW_DEG = 40.0  # beyond, a face's turn and nod tilt its eye line: no sign of a roll


def _read_well(lm: _Landmarker, rgb: np.ndarray, det: np.ndarray, face: _Face, s: dict) -> _Face:
    """The face as the landmarker reads it best: again with its eye line level when it is tilted more than
    ``level_above_deg``, the head's roll (MediaPipe's transform) says so too, by at least ROLL_AGREES_DEG the same
    way, and the head is turned at most LEVEL_MAX_YAW_DEG (a face turned and nodded tilts its eye line without
    any roll, and MediaPipe's roll follows: such faces of the wild and clean benchmarks, read again level, were
    fitted worse; docs/observations.md), and averaged with its mirror image when ``mirror`` is set."""
    limit = s["level_above_deg"]
    tilt = eye_tilt(face.landmarks)  # clockwise on screen positive: the roll's opposite
    if (limit > 0 and abs(tilt) > limit and -np.sign(tilt) * head_roll(face.transform) >= ROLL_AGREES_DEG
            and abs(head_yaw(face.transform)) <= LEVEL_MAX_YAW_DEG):
        level = _levelled(lm, rgb, face, tilt, s)
        if level is not None:
            return level
    return _mirror_averaged(lm, rgb, det, face) if s["mirror"] else face


def _levelled(lm: _Landmarker, rgb: np.ndarray, face: _Face, tilt: float, s: dict) -> _Face | None:
    """``face`` read in a square crop of the full-resolution image turned by ``-tilt`` about the face's centre, so
    that its eye line is level, and mapped back (None when the crop loses it).

    MediaPipe turns its landmark model's input by the angle its detector reads, but reads tilted faces worse all
    the same: on 46 wild renders turned in plane, the landmarks' mean error over the true eye distance was 0.045
    upright and 0.055 / 0.061 at 30 / 45 deg; read again level (the rule of _read_well) 0.048 / 0.047, better on
    22 / 33 faces, worse on 7 / 8 (docs/observations.md, docs/experiments/tiltexp.py)."""
    import cv2

    cx, cy = (face.box[0] + face.box[2]) / 2.0, (face.box[1] + face.box[3]) / 2.0
    side = s["crop_factor"] * face.size
    size = int(min(max(side, 256), 512))  # the landmark model sees faces at 256 px; no gain above
    scale = size / side
    a = np.radians(tilt)
    turn = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # turns image directions by -tilt
    forward = scale * turn  # crop point = forward @ (p - centre) + size / 2, in the corner convention
    shift = size / 2.0 - forward @ np.array([cx, cy])
    # OpenCV's pixel indices are the corner convention's coordinates minus a half
    to_index = np.hstack([forward, (shift + forward @ np.array([0.5, 0.5]) - 0.5)[:, None]])
    crop = cv2.warpAffine(rgb, to_index, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)
    region = np.array([0.0, 0.0, size, size], np.float32)
    found = _observe_region(lm, crop, region)
    back = np.linalg.inv(forward)

    def to_image(points: np.ndarray) -> np.ndarray:
        return ((points.astype(np.float64) - shift) @ back.T).astype(np.float32)

    best = max(found, key=lambda f: box_iou(points_box(to_image(f.landmarks)), face.box), default=None)
    if best is None or not same_face(points_box(to_image(best.landmarks)), face.box, s["dedupe_iou"]):
        return None
    if abs(eye_tilt(best.landmarks)) > s["level_above_deg"] / 2:  # read level, its eye line must be level
        return None
    if s["mirror"]:
        best = _mirror_averaged(lm, crop, crop, best)
    landmarks = to_image(best.landmarks)
    spin = camera_spin(turn.T)  # the crop's directions back in the image's
    corners = to_image(np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
    return _Face(landmarks, (best.z / scale).astype(np.float32), best.blendshapes,
                 (spin @ best.transform).astype(np.float32), points_box(corners), points_box(landmarks))


# -- mirror averaging ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def mirror_permutation() -> np.ndarray:
    """(478,) index of each landmark's mirror partner (its own index on the midline); an involution."""
    with np.load(asset_path(MIRROR_ASSET)) as data:
        return data["permutation"].astype(np.int64)


def mirror_back(points: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Points found on the mirror image of ``roi`` (x0, y0, x1, y1), in their own order and in the
    coordinates that mirror image pretends to have, as the image's points: partner order, x -> x0 + x1 - x."""
    out = np.array(points[mirror_permutation()], np.float32, copy=True)
    out[..., 0] = float(roi[0] + roi[2]) - out[..., 0]
    return out


def _region_pixels(rgb: np.ndarray, det: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The pixels the landmarker saw for ``roi``: the detection image, a square re-observation crop, or a
    tile (cut from the full-resolution image at the detection image's scale)."""
    h, w = rgb.shape[:2]
    if np.allclose(roi, [0, 0, w, h]):
        return det
    side_w, side_h = float(roi[2] - roi[0]), float(roi[3] - roi[1])
    if abs(side_w - side_h) < 1.0:
        return _crop_pixels(rgb, roi)
    k = det.shape[1] / w
    return extract_region(rgb, roi, (max(1, round(side_w * k)), max(1, round(side_h * k))))


def _mirror_averaged(lm: _Landmarker, rgb: np.ndarray, det: np.ndarray, face: _Face) -> _Face:
    """``face`` with its landmarks (and depths and blendshape scores) averaged with those the landmarker
    finds on the mirror image of the pixels it was found in. A detector's error is not mirror-symmetric, so
    part of it cancels: on the wild benchmark the true landmark error fell from 5.49 to 4.86 px
    (docs/observations.md). The face is returned unchanged when the mirror image shows no face at the same
    place."""
    mirrored = np.ascontiguousarray(_region_pixels(rgb, det, face.roi)[:, ::-1])
    best, best_iou = None, 0.0
    for cand in _observe_region(lm, mirrored, face.roi):
        back = mirror_back(cand.landmarks, face.roi)
        iou = box_iou(points_box(back), face.box)
        if iou > best_iou:
            best, best_iou = (cand, back), iou
    if best is None or best_iou < 0.5:
        return face
    cand, back = best
    landmarks = ((face.landmarks + back) / 2).astype(np.float32)
    z = ((face.z + cand.z[mirror_permutation()]) / 2).astype(np.float32)
    shapes = dict(face.blendshapes)
    for name, score in face.blendshapes.items():
        partner = _mirror_name(name)
        if partner in cand.blendshapes:
            shapes[name] = (score + cand.blendshapes[partner]) / 2
    return _Face(landmarks, z, shapes, face.transform, face.roi, points_box(landmarks))


def _mirror_name(name: str) -> str:
    """The blendshape that mirrors ``name`` (eyeBlinkLeft <-> eyeBlinkRight; others are their own)."""
    if name.endswith("Left"):
        return name[: -len("Left")] + "Right"
    if name.endswith("Right"):
        return name[: -len("Right")] + "Left"
    return name


def _inside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: the points inside the image (MediaPipe invents those outside it)."""
    x, y = points[:, 0], points[:, 1]
    return (x >= 0) & (x <= width) & (y >= 0) & (y <= height)


def _covered(region: np.ndarray, box: np.ndarray) -> float:
    """Fraction of ``region``'s area inside ``box``."""
    ix = max(0.0, min(region[2], box[2]) - max(region[0], box[0]))
    iy = max(0.0, min(region[3], box[3]) - max(region[1], box[1]))
    return ix * iy / max(_area(region), 1e-9)


def _area(b: np.ndarray) -> float:
    return float((b[2] - b[0]) * (b[3] - b[1]))


def _add(faces: list[_Face], face: _Face, iou: float) -> None:
    if not any(same_face(face.box, f.box, iou) for f in faces):
        faces.append(face)

"""facer (pyfacer) FaRL face parsing as a segmentation source: our faces in, facer's warp/parse/unwarp, our
part labels out.

facer's parser needs, per face, five keypoints (eyes, nose tip, mouth corners) to align the face with its
448x448 template; they come from our own landmarks (:func:`seg_landmarks.five_points`), so facer's RetinaFace
is not needed. On request (``detector_weights``) RetinaFace runs on the face's context crop and its keypoints
replace ours when it finds the same face.

Memory: facer un-warps the logits onto every pixel of the image it is given, so each face is parsed on a
*context crop* (``CONTEXT`` face sizes, clipped to the image) shrunk to at most ``max_side`` pixels; the
logits are then resampled (bilinear, in row strips) onto the full-resolution *output region* (the landmark
box grown by ``OUTPUT_PAD`` on each side) that the returned masks cover.

Labels (facer's names, ``FaRLFaceParser.label_names``) map onto our parts by :data:`LABEL_MAP`. facer names
sides from the subject's point of view (``le`` = the subject's left eye, on the image's right); see
docs/segmentation.md for the evidence. After parsing, the sides are checked against the landmarks: when the
parser's left eye/brow lie on the subject's right, they are swapped and a warning says so.
"""
from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np

from . import seg_landmarks as sl
from .errors import DetectorUnavailableError
from .geometry import resize
from .torchvision_shim import ensure_importable
from .types import FaceObservation

CONTEXT = 3.0  # side of the square the parser sees, in face sizes (facer itself would see the whole image)
OUTPUT_PAD = 0.25  # the masks cover the landmark box grown by this fraction of its size on each side
OCCLUSION_THRESHOLD = 0.35  # summed probability of the occluder classes above which a pixel is occluded
_STRIP_BYTES = 64 << 20  # logits resampled onto the output region in strips of at most this many bytes

OCC = "occlusion"
# facer label name -> our part index, OCC (an occluder: hair, hat, glasses, cloth, jewellery) or None
LABEL_MAP: dict[str, int | str | None] = {
    "background": None,
    "face": sl.SKIN,
    "rb": sl.RIGHT_BROW,  # subject's right brow (image left for a face looking at the camera)
    "lb": sl.LEFT_BROW,
    "re": sl.RIGHT_EYE,
    "le": sl.LEFT_EYE,
    "nose": sl.NOSE,
    "ulip": sl.UPPER_LIP,
    "llip": sl.LOWER_LIP,
    "imouth": None,  # inner mouth: no part, not skin
    "hair": OCC,
    # CelebAMask-HQ (farl/celebm/448) only
    "neck": None,
    "cloth": OCC,
    "rr": None,  # ears: neither face parts nor occluders of the face
    "lr": None,
    "eyeg": OCC,
    "hat": OCC,
    "earr": OCC,
    "neck_l": OCC,
}

_PARSER_CACHE: dict[tuple, object] = {}
_DETECTOR_CACHE: dict[tuple, object] = {}
_LOAD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()  # one parse at a time per process (torch uses every core anyway)


def import_facer():
    """``import facer`` after making torchvision importable; DetectorUnavailableError (one line) if that fails."""

    state = ensure_importable()
    if state == "missing":
        raise DetectorUnavailableError(
            "face parsing needs torchvision (for pyfacer), which is not installed; install pyfacer with "
            "torchvision pinned to your torch (e.g. torch==2.13.0 torchvision==0.28.0), or use the landmark "
            "fallback")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # timm's deprecation chatter
            import facer
    except Exception as exc:  # ImportError, or RuntimeError from a mismatched torchvision build
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DetectorUnavailableError(
            f"pyfacer (facer) is not importable ({type(exc).__name__}: {first}); pip install pyfacer with "
            "torchvision pinned to your torch, or use the landmark fallback") from exc
    return facer


def load_parser(name: str, weights: Path, device: str):
    """facer's FaRL parser ``name`` with the TorchScript file ``weights``, loaded once per process."""
    facer = import_facer()
    st = Path(weights).stat()
    key = (name, str(weights), st.st_size, st.st_mtime_ns, str(device))
    with _LOAD_LOCK:
        parser = _PARSER_CACHE.get(key)
        if parser is None:
            parser = facer.face_parser(name, device=device, model_path=str(weights))
            parser.eval()
            _PARSER_CACHE.clear()  # one parser resident at a time (the FaRL nets are large)
            _PARSER_CACHE[key] = parser
        return parser


def load_detector(weights: Path, device: str):
    """facer's RetinaFace (mobilenet) with the state dict ``weights``, loaded once per process."""
    facer = import_facer()
    st = Path(weights).stat()
    conf = "resnet50" if "resnet50" in Path(weights).name.lower() else "mobilenet"
    key = (conf, str(weights), st.st_size, st.st_mtime_ns, str(device))
    with _LOAD_LOCK:
        det = _DETECTOR_CACHE.get(key)
        if det is None:
            det = facer.face_detector(f"retinaface/{conf}", device=device, model_path=str(weights))
            det.eval()
            _DETECTOR_CACHE.clear()
            _DETECTOR_CACHE[key] = det
        return det


def _square(box: np.ndarray, factor: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = size
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    half = factor * max(float(box[2] - box[0]), float(box[3] - box[1]), 4.0) / 2.0
    x0, y0 = int(np.clip(np.floor(cx - half), 0, w)), int(np.clip(np.floor(cy - half), 0, h))
    x1, y1 = int(np.clip(np.ceil(cx + half), x0, w)), int(np.clip(np.ceil(cy + half), y0, h))
    return x0, y0, x1, y1


def output_region(face: FaceObservation, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The full-resolution region the parser's masks cover: the landmark box grown by OUTPUT_PAD per side."""
    h, w = size
    p = face.landmarks
    x0, y0, x1, y1 = float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())
    pad = OUTPUT_PAD * max(x1 - x0, y1 - y0)
    return (int(np.clip(np.floor(x0 - pad), 0, w)), int(np.clip(np.floor(y0 - pad), 0, h)),
            int(np.clip(np.ceil(x1 + pad), 0, w)), int(np.clip(np.ceil(y1 + pad), 0, h)))


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _retinaface_points(detector, work, box_work, device) -> np.ndarray | None:
    """RetinaFace's five keypoints of the detection overlapping ``box_work`` most (IoU > 0.3), or None."""
    import torch

    img = torch.from_numpy(np.ascontiguousarray(work)).permute(2, 0, 1)[None].to(device)
    with torch.inference_mode():
        dets = detector(img)
    if dets["rects"].numel() == 0:
        return None
    rects = dets["rects"].float().cpu().numpy()
    ious = [_box_iou(r, box_work) for r in rects]
    k = int(np.argmax(ious))
    if ious[k] <= 0.3:
        return None
    return dets["points"][k].float().cpu().numpy().reshape(5, 2)


def _lookup(label_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per facer class: our label value (part index + 1, 0 = none) and whether it is an occluder."""
    unknown = [n for n in label_names if n not in LABEL_MAP]
    if unknown:
        raise RuntimeError(f"facer parser has labels facefit does not know: {unknown}")
    values = np.array([0 if not isinstance(LABEL_MAP[n], int) else LABEL_MAP[n] + 1 for n in label_names], np.uint8)
    occluder = np.array([LABEL_MAP[n] == OCC for n in label_names], bool)
    return values, occluder


def _resample(logits, region, context, scale_xy, values, occluder, device):
    """Labels and occlusion over the full-resolution ``region`` from work-image logits (1, C, wh, ww)."""
    import torch
    import torch.nn.functional as F

    rx0, ry0, rx1, ry1 = region
    cx0, cy0 = context[:2]
    sx, sy = scale_xy
    rh, rw = ry1 - ry0, rx1 - rx0
    labels = np.zeros((rh, rw), np.uint8)
    occlusion = np.zeros((rh, rw), bool)
    if rh == 0 or rw == 0:
        return labels, occlusion
    _, c, wh, ww = logits.shape
    values_t = torch.from_numpy(values.astype(np.uint8)).to(device)
    occ_t = torch.from_numpy(occluder).to(device)
    # normalised grid_sample coordinates (align_corners=False) of the output pixel centres
    gx = ((np.arange(rw) + rx0 + 0.5 - cx0) * sx) / ww * 2.0 - 1.0
    gy_all = ((np.arange(rh) + ry0 + 0.5 - cy0) * sy) / wh * 2.0 - 1.0
    gx_t = torch.from_numpy(gx.astype(np.float32)).to(device)
    rows = max(1, int(_STRIP_BYTES // max(1, 4 * c * rw * 2)))
    for r0 in range(0, rh, rows):
        gy_t = torch.from_numpy(gy_all[r0:r0 + rows].astype(np.float32)).to(device)
        grid = torch.stack(torch.broadcast_tensors(gx_t[None, :], gy_t[:, None]), dim=-1)[None]
        strip = F.grid_sample(logits, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
        cls = strip.max(0).indices  # (much faster than argmax(0) on CPU)
        occ = occ_t[cls]
        if bool(occluder.any()):
            probs = strip.softmax(0)
            occ = occ | (probs[occ_t].sum(0) > OCCLUSION_THRESHOLD)
        labels[r0:r0 + rows] = values_t[cls].cpu().numpy()
        occlusion[r0:r0 + rows] = occ.cpu().numpy()
    return labels, occlusion


def _centroid(labels: np.ndarray, value: int, region) -> np.ndarray | None:
    ys, xs = np.nonzero(labels == value)
    if len(xs) < 3:
        return None
    return np.array([xs.mean() + region[0] + 0.5, ys.mean() + region[1] + 0.5])


def check_sides(labels: np.ndarray, region, face: FaceObservation) -> tuple[np.ndarray, list[str]]:
    """Compare the parser's left/right eyes and brows with the landmarks' eye axis; swap both pairs when every
    comparable pair is reversed (a warning says so); warn when they disagree with each other."""
    u, _ = sl.face_axes(face)
    verdicts = []
    for left, right in ((sl.LEFT_EYE, sl.RIGHT_EYE), (sl.LEFT_BROW, sl.RIGHT_BROW)):
        cl, cr = _centroid(labels, left + 1, region), _centroid(labels, right + 1, region)
        if cl is not None and cr is not None:
            verdicts.append(float(np.dot(cl - cr, u)) > 0)
    if not verdicts or all(verdicts):
        return labels, []
    if not any(verdicts):
        swapped = labels.copy()
        for a, b in ((sl.LEFT_EYE, sl.RIGHT_EYE), (sl.LEFT_BROW, sl.RIGHT_BROW)):
            swapped[labels == a + 1] = b + 1
            swapped[labels == b + 1] = a + 1
        return swapped, ["the face parser's left/right eyes and brows lie on the landmarks' opposite sides; "
                         "swapped them (check facefit's facer label mapping)"]
    return labels, ["the face parser's left/right eyes and brows disagree with each other about sides "
                    "(kept as parsed)"]


def parse_faces(rgb: np.ndarray, faces: list[FaceObservation], parser, device: str = "cpu",
                max_side: int = 1024, detector=None) -> list[dict]:
    """Parse each face; per face a dict with ``labels``, ``occlusion``, ``region``, ``warnings``, ``keypoints``.

    ``rgb``: the full-resolution (H, W, 3) uint8 image; ``parser``: a loaded facer FaRL parser."""
    import torch


    size = rgb.shape[:2]
    values, occluder = _lookup(list(parser.label_names))
    results = []
    for face in faces:
        warns: list[str] = []
        region = output_region(face, size)
        context = _square(face.bbox, CONTEXT, size)
        cx0, cy0, cx1, cy1 = context
        cw, ch = cx1 - cx0, cy1 - cy0
        if cw < 2 or ch < 2 or region[2] <= region[0] or region[3] <= region[1]:
            results.append({"labels": np.zeros((region[3] - region[1], region[2] - region[0]), np.uint8),
                            "occlusion": np.zeros((region[3] - region[1], region[2] - region[0]), bool),
                            "region": region, "warnings": ["the face lies outside the image"],
                            "keypoints": "none"})
            continue
        scale = min(1.0, float(max_side) / max(cw, ch))
        ww, wh = max(2, int(round(cw * scale))), max(2, int(round(ch * scale)))
        sx, sy = ww / cw, wh / ch
        work = resize(rgb[cy0:cy1, cx0:cx1], (ww, wh))
        points = (sl.five_points(face) - np.array([cx0, cy0], np.float32)) * np.array([sx, sy], np.float32)
        keypoints = "landmarks"
        if detector is not None:
            box = (np.asarray(face.bbox, np.float64) - [cx0, cy0, cx0, cy0]) * [sx, sy, sx, sy]
            found = _retinaface_points(detector, work, box, device)
            if found is None:
                warns.append("RetinaFace did not find this face; aligned with landmark keypoints")
            else:
                points, keypoints = found.astype(np.float32), "retinaface"
        image_t = torch.from_numpy(work).permute(2, 0, 1)[None].to(device=device, dtype=torch.float32) / 255.0
        x0, y0, x1, y1 = (float(v) for v in (np.min(points[:, 0]), np.min(points[:, 1]),
                                             np.max(points[:, 0]), np.max(points[:, 1])))
        data = {
            "rects": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32, device=device),
            "points": torch.from_numpy(points[None].astype(np.float32)).to(device),
            "scores": torch.ones(1, dtype=torch.float32, device=device),
            "image_ids": torch.zeros(1, dtype=torch.int64, device=device),
        }
        with _RUN_LOCK, torch.inference_mode():
            out = parser(image_t, data)
            logits = out["seg"]["logits"].float()
            labels, occlusion = _resample(logits, region, context, (sx, sy), values, occluder, device)
        labels, side_warns = check_sides(labels, region, face)
        results.append({"labels": labels, "occlusion": occlusion, "region": region,
                        "warnings": warns + side_warns, "keypoints": keypoints})
    return results

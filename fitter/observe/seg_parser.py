"""Our own face parser: a small U-Net trained on wild renders whose labels are the model's own part labels.

Why: facer's FaRL weights cannot be downloaded here, and the landmark fallback's masks restate the detector's
landmarks, so PRDL and the photometric domain read nothing the landmark term does not (docs/segmentation.md).
A parser trained on renders labelled by the true mesh's parts learns the parts *as the model defines them* from
the pixels. It is trained only on wild renders (textured skin, hair, occluders, photographic backgrounds, camera
effects; seeds apart from every benchmark seed), so whether it reads real photos is an empirical question that
docs/segmentation.md answers with figures.

The face is cut out by a similarity that puts the eye axis horizontal (:func:`parser_crop`), parsed at
``CROP`` pixels, and the class scores are resampled onto the landmark box (grown by ``OUTPUT_PAD``) that the
returned masks cover. Classes: 0 none, 1..8 the parts in ``PART_NAMES`` order, 9 an occluder over the face.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..assets import asset_folder
from . import seg_landmarks as sl
from .types import FaceObservation

CROP = 128  # pixels of the square the network sees
CONTEXT = 1.5  # side of that square in landmark-box sizes
OUTPUT_PAD = 0.25  # the masks cover the landmark box grown by this fraction of its size on each side
CLASSES = 10  # none, the eight parts, occluder
OCCLUDER = 9
WEIGHTS = asset_folder() / "part_parser.npz"  # built by assets/build/build_part_parser.py
SOURCE = "facefit:parser/wild128"
_MEAN = (0.5, 0.45, 0.4)
_STD = 0.25


def parser_crop(landmarks: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
    """(2, 3) affine from image pixels to the parser's ``CROP`` x ``CROP`` square: the landmark box's centre in
    the middle, its larger side ``1 / CONTEXT`` of the square, the eye axis horizontal. ``jitter`` (scale factor,
    angle in radians, shift x, shift y in squares) perturbs it for training."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    face = FaceObservation(landmarks=pts, landmark_format=_format(pts), bbox=np.r_[pts.min(0), pts.max(0)])
    right, left = sl.eye_centres(face)
    axis = left - right  # subject's right eye -> left eye: image left -> right for a face looking at the camera
    angle = np.arctan2(axis[1], axis[0])
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    side = CONTEXT * max(hi - lo)
    scale_j, angle_j, dx, dy = (1.0, 0.0, 0.0, 0.0) if jitter is None else jitter
    scale = CROP / (side * scale_j)
    c, s = np.cos(-(angle + angle_j)) * scale, np.sin(-(angle + angle_j)) * scale
    rot = np.array([[c, -s], [s, c]])
    shift = np.array([CROP / 2 + dx * CROP, CROP / 2 + dy * CROP]) - rot @ centre
    return np.c_[rot, shift]


def _format(pts: np.ndarray) -> str:
    return "mediapipe478" if len(pts) >= 468 else "ibug68"


def index_affine(affine: np.ndarray) -> np.ndarray:
    """The same map between pixel indices, as OpenCV takes it: the project's pixel centres lie at index + 0.5."""
    out = affine.copy()
    out[:, 2] += affine[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return out


def crop_image(image: np.ndarray, affine: np.ndarray, size: int = CROP, nearest: bool = False) -> np.ndarray:
    """(size, size, ...) the face square through ``affine`` (continuous pixel coordinates), area-filtered first
    when it shrinks the face (``nearest`` for label maps: no filtering)."""
    scale = float(np.hypot(*affine[0, :2]))
    if scale < 0.5 and not nearest:  # pre-shrink so that bilinear sampling does not alias
        f = scale * 1.5
        image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        affine = affine.copy()
        affine[:, :2] /= f
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    border = cv2.BORDER_CONSTANT if nearest else cv2.BORDER_REPLICATE
    return cv2.warpAffine(image, index_affine(affine), (size, size), flags=flags, borderMode=border, borderValue=0)


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(B, CROP, CROP, 3) uint8 -> normalised (B, 3, CROP, CROP) float."""
    x = torch.as_tensor(crops).float().permute(0, 3, 1, 2) / 255.0
    return (x - torch.tensor(_MEAN).view(1, 3, 1, 1)) / _STD


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PartParser(nn.Module):
    """A four-level U-Net: enough receptive field to see the whole face at ``CROP`` pixels, small enough to
    train on two CPU cores."""

    def __init__(self, width: int = 16, classes: int = CLASSES) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.down = nn.ModuleList([_block(3, w[0])] + [_block(w[i], w[i + 1]) for i in range(4)])
        self.up = nn.ModuleList([_block(w[i + 1] + w[i], w[i]) for i in range(4)])
        self.head = nn.Conv2d(w[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)


_LOCK = threading.Lock()
_NET: dict[str, PartParser] = {}


def save_parser(net: PartParser, path: Path, width: int) -> None:
    """The network's state as one .npz (float32 arrays and its width), the form assets ship in."""
    arrays = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    np.savez_compressed(path, _width=np.array(width), **arrays)


def load_parser(path: Path | None = None) -> PartParser:
    """The trained parser (the shipped one by default; cached per path)."""
    path = Path(path) if path is not None else WEIGHTS
    key = str(path)
    with _LOCK:
        if key not in _NET:
            with np.load(path) as data:
                state = {k: torch.as_tensor(data[k]) for k in data.files if k != "_width"}
                net = PartParser(width=int(data["_width"]))
            net.load_state_dict(state)
            _NET[key] = net.eval()
        return _NET[key]


def output_region(landmarks: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The landmark box grown by ``OUTPUT_PAD`` of its size on each side, clipped to the image (w, h)."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    pad = OUTPUT_PAD * (hi - lo)
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int)
    w, h = size
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


@torch.no_grad()
def parse(image: np.ndarray, face: FaceObservation, net: PartParser | None = None
          ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], float]:
    """Labels (h, w) uint8 (0 none, part index + 1), occlusion (h, w) bool and the region they cover, for one
    face of an RGB uint8 image; and the seconds it took."""
    t0 = time.perf_counter()
    net = net or load_parser()
    pts = np.asarray(face.landmarks, np.float64)[:, :2]
    affine = parser_crop(pts)
    crop = crop_image(image, affine)
    flipped = crop[:, ::-1].copy()
    logits = net(to_tensor(np.stack([crop, flipped])))
    prob = torch.softmax(logits, 1).numpy()
    prob = (prob[0] + mirror_classes(prob[1][:, :, ::-1])) / 2  # mirror-averaged, as the detector
    region = output_region(pts, (image.shape[1], image.shape[0]))
    x0, y0, x1, y1 = region
    to_region = affine.copy()
    to_region[:, 2] += affine[:, :2] @ np.array([x0, y0], float)  # region pixel (0, 0) is image pixel (x0, y0)
    to_region = index_affine(to_region)
    planes = [cv2.warpAffine(p, to_region, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=1.0 if k == 0 else 0.0)
              for k, p in enumerate(prob.astype(np.float32))]
    cls = np.argmax(np.stack(planes), 0).astype(np.uint8)
    occlusion = cls == OCCLUDER
    labels = np.where(occlusion, 0, cls).astype(np.uint8)
    return labels, occlusion, region, time.perf_counter() - t0


#: class order after a left-right mirror: the eyes and the brows swap
MIRROR = np.array([0, 2, 1, 4, 3, 5, 6, 7, 8, 9])


def mirror_classes(scores: np.ndarray) -> np.ndarray:
    """Class scores (C, ...) of a mirrored image put back in the unmirrored image's class order."""
    return scores[MIRROR]

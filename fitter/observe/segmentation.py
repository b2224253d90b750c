"""Facial part segmentation for the PRDL energy: per face, eight part masks and an occlusion mask over a crop
of the full-resolution image, from facer's FaRL parser, from facefit's own parser (trained on wild renders,
shipped) or from the landmarks.

Public API::

    PART_NAMES                                  # the eight parts, in label order
    segment_faces(image, faces, backend="auto", parser="farl/lapa/448", parser_weights=None,
                  detector_weights=None, cache_dir=None, device="cpu", *, cache=True, max_side=1024)
        -> list[PartMasks]                      # one per face, same order
    PartMasks.mask(part) / .points(part, below_brows=False, visible=True) / .skin_mask(...)
    PartMasks.save(path) / PartMasks.load(path)
    parser_weights_path(parser) / facer_status(parser, parser_weights) / default_cache_dir()
    ParserWeightsMissingError (a MissingWeightsError), ParserLoadError (a corrupt weight file),
    OwnParserWeightsMissingError (our parser's shipped weights missing)

"left"/"right" are the subject's own sides: ``left_eye`` appears on the image's right for a face looking at
the camera. See docs/segmentation.md for the sources, label mappings and how the sides were verified.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fitter.io import LoadedImage, load_image

from ..common.files import cache_folder, write_npz
from . import seg_facer, seg_parser
from . import seg_landmarks as _sl
from .backends import FACER_WEIGHTS
from .cache import cache_key
from .errors import DetectorUnavailableError, MissingWeightsError
from .seg_facer import import_facer
from .types import FaceObservation, ImageObservation

PART_NAMES = ("left_eye", "right_eye", "left_brow", "right_brow", "nose", "upper_lip", "lower_lip", "skin")
BACKENDS = ("auto", "facer", "parser", "landmarks")
PARSERS = ("farl/lapa/448", "farl/celebm/448")
SOURCES = tuple(f"facer:{p}" for p in PARSERS) + (seg_parser.SOURCE, "landmarks")
SEGMENTATION_VERSION = 1  # bump when the masks an unchanged input gives change (part of the cache key)
WEIGHTS_URL = "https://github.com/FacePerceiver/facer/releases/download/models-v1/"

log = logging.getLogger(__name__)


class ParserWeightsMissingError(MissingWeightsError):
    """facer's parser weights are not on disk (one line: which file, where to put it, the alternatives)."""

    def __init__(self, parser: str, path: Path, explicit: bool = False) -> None:
        self.path = str(path)
        self.url = WEIGHTS_URL + Path(path).name if not explicit else ""
        if explicit:
            where = "check the --parser-weights path"
        else:
            where = (f"download {self.url} on a machine with internet and copy it there (or set TORCH_HOME to "
                     "the folder holding hub/checkpoints/), or pass the file with --parser-weights PATH")
        RuntimeError.__init__(
            self,
            f"face parser {parser} needs the weight file {self.path}, which is missing; {where}; or use the "
            "weaker offline segmentation from landmarks (backend 'landmarks')")


class OwnParserWeightsMissingError(MissingWeightsError):
    """facefit's own parser weights (shipped in assets/) are not on disk: a broken install or checkout."""

    def __init__(self, path: Path) -> None:
        self.path, self.url = str(path), ""
        RuntimeError.__init__(
            self,
            f"facefit's part parser needs the weight file {path}, which is missing; reinstall facefit or rebuild it "
            "with assets/build/build_part_parser.py (docs/segmentation.md), or use backend 'landmarks'")


class ParserLoadError(RuntimeError):
    """facer cannot load the parser weights (a corrupt or foreign file)."""


# -- the result ----------------------------------------------------------------------------------------
@dataclass
class PartMasks:
    """Part masks of one face over ``region`` (x0, y0, x1, y1) of the full-resolution, EXIF-oriented image.

    ``labels[i, j]`` is the index + 1 in :data:`PART_NAMES` of the part at full-image pixel
    ``(x0 + j, y0 + i)`` (0: none of them: background, hair, inner mouth, neck, ...). ``occlusion`` marks
    pixels hidden by hair, a hat, glasses, clothes or jewellery (parser only; all False for the landmark
    fallback), including pixels where such an occluder is likely but not the parser's first choice.
    ``brow_line`` is ``(px, py, nx, ny)``: a point on a line along the brows' upper edge and the unit normal
    towards the mouth (see :meth:`points` ``below_brows``).
    """

    labels: np.ndarray  # (h, w) uint8
    occlusion: np.ndarray  # (h, w) bool
    region: tuple[int, int, int, int]
    source: str  # "facer:farl/lapa/448" | "facer:farl/celebm/448" | "landmarks"
    weak: bool  # True for the landmark fallback
    brow_line: np.ndarray | None = None  # (4,) float32
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # e.g. keypoints: "landmarks" | "retinaface", seconds

    def __post_init__(self) -> None:
        self.labels = np.ascontiguousarray(self.labels, np.uint8)
        self.occlusion = np.ascontiguousarray(self.occlusion, bool)
        self.region = tuple(int(v) for v in self.region)
        if self.brow_line is not None:
            self.brow_line = np.asarray(self.brow_line, np.float32).reshape(4)
        x0, y0, x1, y1 = self.region
        if self.labels.shape != (y1 - y0, x1 - x0) or self.occlusion.shape != self.labels.shape:
            raise ValueError(f"labels {self.labels.shape} / occlusion {self.occlusion.shape} do not match "
                             f"region {self.region}")
        if self.labels.size and int(self.labels.max()) > len(PART_NAMES):
            raise ValueError(f"labels above {len(PART_NAMES)}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    def mask(self, part: str) -> np.ndarray:
        """(h, w) bool mask of ``part`` (one of PART_NAMES) over ``region``."""
        return self.labels == _part_value(part)

    def below_brows_mask(self) -> np.ndarray:
        """(h, w) bool: pixels whose centres lie on the mouth's side of ``brow_line`` (all True without one)."""
        h, w = self.shape
        if self.brow_line is None:
            return np.ones((h, w), bool)
        px, py, nx, ny = (float(v) for v in self.brow_line)
        x0, y0 = self.region[:2]
        dx = (np.arange(w) + x0 + 0.5 - px) * nx
        dy = (np.arange(h) + y0 + 0.5 - py) * ny
        return (dy[:, None] + dx[None, :]) >= 0.0

    def skin_mask(self, below_brows: bool = True, visible: bool = True) -> np.ndarray:
        """Skin for PRDL: by default without the forehead above ``brow_line`` and without occluded pixels."""
        return self._select("skin", below_brows, visible)

    def points(self, part: str, below_brows: bool = False, visible: bool = True) -> np.ndarray:
        """(N, 2) float32 full-image coordinates ``(x0 + j + 0.5, y0 + i + 0.5)`` of the centres of the
        ``part`` pixels. ``below_brows``: drop pixels above ``brow_line`` (the forehead, for skin);
        ``visible``: drop ``occlusion`` pixels (hair over the skin, glasses, ...)."""
        m = self._select(part, below_brows, visible)
        ys, xs = np.nonzero(m)
        x0, y0 = self.region[:2]
        return np.stack([xs + (x0 + 0.5), ys + (y0 + 0.5)], axis=1).astype(np.float32)

    def _select(self, part: str, below_brows: bool, visible: bool) -> np.ndarray:
        m = self.mask(part)
        if visible:
            m &= ~self.occlusion
        if below_brows:
            m &= self.below_brows_mask()
        return m

    def full_mask(self, part: str, image_size: tuple[int, int], **kw) -> np.ndarray:
        """(H, W) bool mask of ``part`` in the whole image (``kw`` as for :meth:`points`; memory: H x W)."""
        out = np.zeros(image_size, bool)
        x0, y0, x1, y1 = self.region
        out[y0:y1, x0:x1] = self._select(part, kw.get("below_brows", False), kw.get("visible", True))
        return out

    # -- cache round trip --------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write as one .npz, atomically (a temporary file renamed into place)."""
        meta = {"region": list(self.region), "source": self.source, "weak": bool(self.weak),
                "warnings": list(self.warnings), "info": self.info, "parts": list(PART_NAMES),
                "version": SEGMENTATION_VERSION}
        arrays = {"labels": self.labels, "occlusion": np.packbits(self.occlusion, axis=None),
                  "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        if self.brow_line is not None:
            arrays["brow_line"] = self.brow_line

        write_npz(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "PartMasks":
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if tuple(meta["parts"]) != PART_NAMES:
                raise ValueError(f"{path}: masks of other parts {meta['parts']}")
            labels = data["labels"]
            occlusion = np.unpackbits(data["occlusion"], count=labels.size).reshape(labels.shape).astype(bool)
            brow = data["brow_line"] if "brow_line" in data else None
        return cls(labels=labels, occlusion=occlusion, region=tuple(meta["region"]), source=meta["source"],
                   weak=meta["weak"], brow_line=brow, warnings=meta["warnings"], info=meta.get("info", {}))


def _part_value(part: str) -> int:
    try:
        return PART_NAMES.index(part) + 1
    except ValueError:
        raise ValueError(f"unknown part {part!r}; choose one of {PART_NAMES}") from None


# -- weights and availability ---------------------------------------------------------------------------
def _hub_checkpoints() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _facer_file(what: str) -> str:

    return FACER_WEIGHTS[what]


def parser_weights_path(parser: str = "farl/lapa/448", parser_weights: Path | str | None = None) -> Path:
    """Where the parser's TorchScript file is expected: ``parser_weights`` or facer's torch-hub location."""
    _check_parser(parser)
    if parser_weights is not None:
        return Path(parser_weights).expanduser()
    return _hub_checkpoints() / _facer_file(f"parser {parser}")


def _detector_weights_path(detector_weights) -> Path | None:
    if detector_weights is None:
        return None
    if str(detector_weights) == "auto":
        path = _hub_checkpoints() / _facer_file("detector retinaface/mobilenet")
        return path if path.is_file() else None
    path = Path(detector_weights).expanduser()
    if not path.is_file():
        raise MissingWeightsError("facer's RetinaFace detector", path)
    return path


def facer_status(parser: str = "farl/lapa/448", parser_weights: Path | str | None = None) -> tuple[bool, str]:
    """(usable, one line): whether the facer backend can run now; the line says why not."""
    path = parser_weights_path(parser, parser_weights)
    if not path.is_file():
        return False, str(ParserWeightsMissingError(parser, path, explicit=parser_weights is not None))
    try:

        import_facer()
    except DetectorUnavailableError as exc:
        return False, str(exc)
    return True, f"facer {parser} with {path}"


def _check_parser(parser: str) -> None:
    if parser not in PARSERS:
        raise ValueError(f"unknown face parser {parser!r}; choose one of {PARSERS}")


# -- cache ---------------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$FACEFIT_CACHE/masks``, else ``~/.cache/facefit/masks``."""
    return cache_folder("masks")


def _file_id(path: Path | None) -> dict | None:
    if path is None:
        return None
    st = path.stat()
    return {"name": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def face_identity(index: int, face: FaceObservation) -> dict:
    """What identifies a face in a mask cache key: its index, box and the exact landmarks."""
    return {"index": int(index), "format": face.landmark_format,
            "bbox": [round(float(v), 3) for v in np.asarray(face.bbox).ravel()],
            "landmarks": hashlib.sha256(np.ascontiguousarray(face.landmarks, np.float32).tobytes()).hexdigest()}


def mask_cache_key(content_hash: str, settings: dict, face: dict) -> str:
    """Hex key of the masks of ``face`` (see :func:`face_identity`) in the image with ``content_hash``."""

    return cache_key(content_hash, {"segmentation": settings, "face": face})


def _entry(key: str, cache_dir) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / key[:2] / f"{key}.npz"


def _cache_get(path: Path) -> PartMasks | None:
    if not path.is_file():
        return None
    try:
        return PartMasks.load(path)
    except Exception as exc:  # truncated/corrupt entry: drop it
        log.warning("facefit: ignoring corrupt mask cache entry %s (%s)", path, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def _cache_put(path: Path, masks: PartMasks) -> None:
    try:
        masks.save(path)
    except OSError as exc:
        log.warning("facefit: cannot write mask cache entry %s (%s)", path, exc)


# -- the entry point -----------------------------------------------------------------------------------
def segment_faces(
    image: LoadedImage | str | Path,
    faces: list[FaceObservation] | ImageObservation,
    backend: str = "auto",
    parser: str = "farl/lapa/448",
    parser_weights: Path | str | None = None,
    detector_weights: Path | str | None = None,
    cache_dir: Path | str | None = None,
    device: str = "cpu",
    *,
    cache: bool = True,
    max_side: int = 1024,
) -> list[PartMasks]:
    """Part masks of every face, in the order of ``faces``.

    ``backend``: ``"facer"`` (FaRL parser ``parser``; raises :class:`ParserWeightsMissingError` or
    ``DetectorUnavailableError`` when it cannot run), ``"parser"`` (facefit's own parser, trained on wild
    renders with the model's part labels: :mod:`seg_parser`), ``"landmarks"`` (offline polygons from the
    landmarks, ``weak=True``) or ``"auto"`` (facer when its weights and package are there, else our parser,
    else landmarks, with the reason in each result's ``warnings``). ``parser_weights``: the parser's
    TorchScript file (default: facer's file in ``$TORCH_HOME/hub/checkpoints``). ``detector_weights``: a RetinaFace state dict whose keypoints
    align the parser instead of the landmarks' (``"auto"``: facer's mobilenet file when it is in the hub
    cache; None: landmarks only). ``max_side``: the parser's context crop is shrunk to this long side.
    Results are cached per face in ``cache_dir`` (default :func:`default_cache_dir`) unless ``cache=False``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown segmentation backend {backend!r}; choose one of {BACKENDS}")
    _check_parser(parser)
    if isinstance(faces, ImageObservation):
        faces = faces.faces
    faces = list(faces)
    if not isinstance(image, LoadedImage):
        image = load_image(image)
    if not faces:
        return []

    run_warnings: list[str] = []
    chosen = backend
    weights = det_weights = None
    if backend in ("auto", "facer"):
        weights = parser_weights_path(parser, parser_weights)
        try:
            if not weights.is_file():
                raise ParserWeightsMissingError(parser, weights, explicit=parser_weights is not None)

            import_facer()
            chosen = "facer"
        except (MissingWeightsError, DetectorUnavailableError) as exc:
            if backend == "facer":
                raise
            chosen = _fallback(exc, run_warnings)

    if chosen == "facer":
        det_weights = _detector_weights_path(detector_weights)  # an explicit path that is missing raises
        try:
            return _segment(image, faces, "facer", parser, weights, det_weights, device, max_side, cache,
                            cache_dir, run_warnings)
        except ParserLoadError as exc:
            if backend == "facer":
                raise
            chosen = _fallback(exc, run_warnings)
    if chosen == "parser" and not seg_parser.WEIGHTS.is_file():
        raise OwnParserWeightsMissingError(seg_parser.WEIGHTS)
    return _segment(image, faces, chosen, parser, None, None, device, max_side, cache, cache_dir, run_warnings)


def _fallback(exc: Exception, run_warnings: list[str]) -> str:
    """What ``auto`` uses when facer cannot run: our own parser when its weights are installed, else the
    landmark polygons; the reason goes into every result's warnings."""
    if seg_parser.WEIGHTS.is_file():
        run_warnings.append(f"part masks from facefit's own parser (trained on renders) because facer's parser "
                            f"cannot run: {exc}")
        return "parser"
    run_warnings.append(f"part masks from landmarks (weaker) because the face parser cannot run: {exc}")
    return "landmarks"


def _segment(image, faces, chosen, parser, weights, det_weights, device, max_side, cache, cache_dir,
             run_warnings) -> list[PartMasks]:
    if chosen == "facer":
        settings = {"backend": "facer", "parser": parser, "weights": _file_id(weights),
                    "detector": _file_id(det_weights), "max_side": int(max_side), "pyfacer": _version("pyfacer"),
                    "version": SEGMENTATION_VERSION}
    elif chosen == "parser":
        settings = {"backend": "parser", "weights": _file_id(seg_parser.WEIGHTS), "version": SEGMENTATION_VERSION}
    else:
        settings = {"backend": "landmarks", "mediapipe": _version("mediapipe"), "version": SEGMENTATION_VERSION}

    results: list[PartMasks | None] = [None] * len(faces)
    paths: list[Path | None] = [None] * len(faces)
    if cache:
        for k, face in enumerate(faces):
            paths[k] = _entry(mask_cache_key(image.content_hash, settings, face_identity(k, face)), cache_dir)
            results[k] = _cache_get(paths[k])
    todo = [k for k, r in enumerate(results) if r is None]
    if todo:
        if chosen == "facer":
            computed = _run_facer(image, [faces[k] for k in todo], parser, weights, det_weights, device, max_side)
        elif chosen == "parser":
            computed = [_run_parser(image, faces[k]) for k in todo]
        else:
            computed = [_run_landmarks(image, faces[k]) for k in todo]
        for k, masks in zip(todo, computed):
            results[k] = masks
            if cache:
                _cache_put(paths[k], masks)
    for masks in results:
        masks.warnings = list(masks.warnings) + run_warnings
    return results


def _run_landmarks(image: LoadedImage, face: FaceObservation) -> PartMasks:
    t0 = time.perf_counter()
    labels, region = _sl.segment(face, image.size)
    return PartMasks(labels=labels, occlusion=np.zeros_like(labels, bool), region=region, source="landmarks",
                     weak=True, brow_line=_sl.brow_line(face),
                     info={"landmarks": face.landmark_format, "seconds": round(time.perf_counter() - t0, 4)})


def _run_parser(image: LoadedImage, face: FaceObservation) -> PartMasks:
    labels, occlusion, region, seconds = seg_parser.parse(image.rgb, face)
    return PartMasks(labels=labels, occlusion=occlusion, region=region, source=seg_parser.SOURCE, weak=False,
                     brow_line=_sl.brow_line(face),
                     info={"landmarks": face.landmark_format, "weights": seg_parser.WEIGHTS.name,
                           "seconds": round(seconds, 4)})


def _run_facer(image, faces, parser, weights, det_weights, device, max_side) -> list[PartMasks]:

    try:
        net = seg_facer.load_parser(parser, weights, device)
    except DetectorUnavailableError:
        raise
    except Exception as exc:  # torch.jit.load of a corrupt or foreign file raises many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParserLoadError(f"cannot load the face parser {parser} from {weights} ({type(exc).__name__}: "
                              f"{first}); replace the file, or use the landmark fallback") from exc
    detector = seg_facer.load_detector(det_weights, device) if det_weights is not None else None
    out = []
    for face in faces:  # one at a time: each has its own context crop
        t0 = time.perf_counter()
        (r,) = seg_facer.parse_faces(image.rgb, [face], net, device=device, max_side=max_side, detector=detector)
        out.append(PartMasks(labels=r["labels"], occlusion=r["occlusion"], region=r["region"],
                             source=f"facer:{parser}", weak=False, brow_line=_sl.brow_line(face),
                             warnings=r["warnings"],
                             info={"keypoints": r["keypoints"], "weights": Path(weights).name,
                                   "seconds": round(time.perf_counter() - t0, 4)}))
    return out

"""fitter.observe: what detectors see in an image (landmarks, blendshape scores, head transform), cached.

Public API::

    observe_image(image, detector="mediapipe", largest=False, cache_dir=None, *, cache=True, prominent=False,
                  **settings) -> ImageObservation
    resolve_settings(detector="mediapipe", largest=False, *, prominent=False, **settings) -> dict
    follow_one_person(boxes per frame) -> Following    # which face of each frame of a clip is the person followed
    was_turned(observation.warnings) -> bool       # the image was upside down or on its side (found turned back)
    quarter_turns(observation.warnings) -> int     # 0-3 counter-clockwise quarter turns it was found turned by
    backends.available() -> dict                   # for `facefit doctor`
    cache.get(key, cache_dir) / cache.put(key, obs, cache_dir) / cache.cache_key(content_hash, settings)
    torchvision_shim.ensure_importable() -> "native" | "shimmed" | "missing"
    FaceObservation, ImageObservation, MissingWeightsError, DetectorUnavailableError
    segment_faces(image, faces, backend="auto"|"facer"|"landmarks", ...) -> list[PartMasks]   # part masks

Heavy packages (mediapipe, torch, face_alignment) are imported on first use, not here.
"""
from . import backends, cache, torchvision_shim
from .api import observe_image, quarter_turns, resolve_settings, was_turned
from .errors import DetectorUnavailableError, MissingWeightsError
from .follow import Following, follow_one_person
from .segmentation import PART_NAMES, PartMasks, segment_faces
from .types import LANDMARK_FORMATS, FaceObservation, ImageObservation

__all__ = [
    "LANDMARK_FORMATS",
    "PART_NAMES",
    "PartMasks",
    "segment_faces",
    "DetectorUnavailableError",
    "FaceObservation",
    "Following",
    "follow_one_person",
    "ImageObservation",
    "MissingWeightsError",
    "backends",
    "cache",
    "observe_image",
    "resolve_settings",
    "torchvision_shim",
    "was_turned",
    "quarter_turns",
]

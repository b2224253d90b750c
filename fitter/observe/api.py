"""The entry point the pipeline calls: observations of one image, from the cache when possible."""
from __future__ import annotations

from pathlib import Path

from fitter.io import LoadedImage, load_image

from . import cache as _cache
from . import fan_backend, mediapipe_backend
from .backends import DETECTORS, fingerprint
from .types import ImageObservation

NO_FACE = "no face found"  # the warning of an observation without faces (it names no file: the caller does)
was_turned = mediapipe_backend.was_turned  # whether an observation's image was found turned (its warnings)
quarter_turns = mediapipe_backend.quarter_turns  # by how many counter-clockwise quarter turns (0-3)


def resolve_settings(detector: str = "mediapipe", largest: bool = False, *, prominent: bool = False,
                     **settings) -> dict:
    """Every setting an observation depends on (defaults filled in, backend fingerprint included): what
    is stored in ``ImageObservation.settings`` and hashed into the cache key. Raises TypeError/ValueError
    for an unknown detector or setting. ``prominent`` is stored only when set, so observations made
    without it keep their cache keys."""
    detector = str(detector).lower()
    if detector == "mediapipe":
        s = mediapipe_backend.check_settings(settings)
    elif detector == "fan":
        s = fan_backend.check_settings(settings)
    else:
        raise ValueError(f"unknown detector {detector!r}; choose one of {DETECTORS}")
    mode = {"largest": bool(largest), **({"prominent": True} if prominent and not largest else {})}
    return {"detector": detector, **mode, **s, "backend": fingerprint(detector, s)}


def observe_image(
    image: LoadedImage | str | Path,
    detector: str = "mediapipe",
    largest: bool = False,
    cache_dir: Path | str | None = None,
    *,
    cache: bool = True,
    prominent: bool = False,
    **settings,
) -> ImageObservation:
    """Landmarks (and MediaPipe's blendshapes and transform) of every face in ``image``, largest first.

    ``detector``: ``"mediapipe"`` (478 points) or ``"fan"`` (68 iBUG points; needs face-alignment's
    weights in ``$TORCH_HOME/hub/checkpoints``, else :class:`MissingWeightsError`). ``largest``: return
    only the biggest face. ``prominent``: every face found without the tile search for small faces (the faces
    of a clip's frame, one person to be followed among them; ignored with ``largest``). ``settings``: detector
    options (see ``mediapipe_backend.DEFAULTS`` and
    ``fan_backend.DEFAULTS``). Results are cached in ``cache_dir`` (default: ``$FACEFIT_CACHE`` or
    ``~/.cache/facefit/observations``) unless ``cache=False``. An image without faces gives an
    observation with no faces and a warning, never an exception. All coordinates refer to the
    full-resolution, EXIF-oriented image.
    """
    if not isinstance(image, LoadedImage):
        image = load_image(image)
    resolved = resolve_settings(detector, largest, prominent=prominent, **settings)
    run_settings = {k: v for k, v in resolved.items() if k not in ("detector", "largest", "prominent", "backend")}

    key = None
    if cache:
        key = _cache.cache_key(image.content_hash, resolved)
        hit = _cache.get(key, cache_dir)
        if hit is not None:
            return relabel(hit, image.source)

    run = mediapipe_backend.detect if resolved["detector"] == "mediapipe" else fan_backend.detect
    faces, warns = run(image.rgb, run_settings, largest=largest, prominent=resolved.get("prominent", False))
    if not faces:
        warns.append(NO_FACE)
    obs = ImageObservation(
        source=image.source,
        image_size=image.size,
        faces=faces,
        settings=resolved,
        warnings=list(image.warnings) + warns,
    )
    if cache:
        _cache.put(key, obs, cache_dir)
    return obs


def relabel(observation: ImageObservation, source: str) -> ImageObservation:
    """A cached observation made for the current file: the same pixels may have been observed under another
    name, and its warnings must not name that other file (entries of older versions did)."""
    old = observation.source
    if old and old != source:
        observation.warnings = [w.replace(old, source) for w in observation.warnings]
    observation.source = source
    return observation

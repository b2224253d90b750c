"""Backgrounds of wild renders: crops of the repository's own photos taken away from their faces, or
procedural scenes (a wall with a door frame, city lights out of focus, foliage, a studio sweep, a room).

The photos are those of examples/images (licences in examples/images/LICENSES.md: public domain, CC0 and
CC BY 2.0 "Photo: Dick Thomas Johnson"); only the rectangles below, which hold no face, are used (a test
runs the face detector on them). They install as the package ``facefit_examples`` so that wheel and checkout
draw the same renders; where they are missing all the same, procedural backgrounds stand in and the record
says so.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from ..assets import example_path
from ..common.colour import srgb_to_linear
from .effects import Effect, effect_rng

EXAMPLES = example_path("")

# Face-free rectangles (x0, y0, x1, y1 as fractions of the photo) of each example photo.
PHOTO_REGIONS: dict[str, list[tuple[float, float, float, float]]] = {
    "Bryan.png": [(0.0, 0.0, 0.2, 0.7), (0.8, 0.0, 1.0, 0.7)],
    "Chris.jpeg": [(0.0, 0.0, 0.2, 0.6), (0.82, 0.0, 1.0, 0.6)],
    "Luciano.png": [(0.0, 0.0, 0.26, 0.75), (0.77, 0.0, 1.0, 0.45)],
    "astronaut.png": [(0.0, 0.0, 0.2, 0.65), (0.68, 0.0, 1.0, 0.55)],
    "grace_hopper.jpg": [(0.0, 0.0, 0.2, 0.75), (0.8, 0.0, 1.0, 0.45)],
}
PROCEDURAL = ("wall", "city_lights", "foliage", "studio", "room")


def sample_background(seed: int, index: int) -> list[Effect]:
    rng = effect_rng(seed, index, "background")
    photos = [name for name in PHOTO_REGIONS if (EXAMPLES / name).exists()]
    params = {"brightness": float(np.exp(rng.normal(np.log(0.6), 0.7))), "blur_px": rng.uniform(0.5, 6)
              if rng.random() < 0.7 else 0.0, "seed": int(rng.integers(2**31))}
    if photos and rng.random() < 0.5:
        name = photos[rng.integers(len(photos))]
        regions = PHOTO_REGIONS[name]
        params |= {"kind": "photo", "photo": name, "region": list(regions[rng.integers(len(regions))]),
                   "zoom": rng.uniform(0.5, 1.0), "flip": bool(rng.random() < 0.5)}
        return [Effect("background_photo", "background", params)]
    params |= {"kind": str(rng.choice(PROCEDURAL)), "photos_available": bool(photos)}
    return [Effect("background_procedural", "background", params)]


@functools.lru_cache(maxsize=8)
def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(EXAMPLES / name), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{EXAMPLES / name}: cannot read this background photo; restore examples/images")
    return srgb_to_linear(image[..., ::-1].astype(np.float32) / 255.0).astype(np.float32)


def photo_crop(name: str, region, size: tuple[int, int], zoom: float, flip: bool,
               rng: np.random.Generator) -> np.ndarray:
    """A crop of ``region`` with the output's aspect (``zoom`` of the largest that fits), resized to
    ``size`` (H, W); linear light."""
    photo = _photo(name)
    ph, pw = photo.shape[:2]
    x0, y0, x1, y1 = region[0] * pw, region[1] * ph, region[2] * pw, region[3] * ph
    h, w = size
    aspect = w / h
    ch = min(y1 - y0, (x1 - x0) / aspect) * zoom
    cw = ch * aspect
    cx = rng.uniform(x0, x1 - cw)
    cy = rng.uniform(y0, y1 - ch)
    crop = photo[int(cy):max(int(cy + ch), int(cy) + 2), int(cx):max(int(cx + cw), int(cx) + 2)]
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out[:, ::-1] if flip else out, 0, None)


def _smooth(rng: np.random.Generator, size: tuple[int, int], cells: int, channels: int = 3) -> np.ndarray:
    grid = rng.uniform(0, 1, (cells, cells, channels)).astype(np.float32)
    return cv2.resize(grid, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).reshape(size[0], size[1], channels)


def procedural(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A procedural background (H, W, 3), linear light, mean about 0.5."""
    h, w = size
    x = np.arange(w, dtype=np.float32)[None, :, None]
    base = rng.uniform(0.15, 1.0, 3).astype(np.float32)
    base /= base.max()
    light = 0.6 + 0.4 * _smooth(rng, size, 3, 1)  # uneven illumination of the scene
    if kind == "wall":
        plaster = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5)[..., None]
        out = base * light * (1 + 0.02 * plaster)
        edge, frame = rng.uniform(0.1, 0.9) * w, rng.uniform(0.03, 0.08) * w
        trim = np.abs(x - edge) < frame / 2
        out = np.where(trim, out * np.float32(rng.uniform(0.5, 1.4)) * rng.uniform(0.8, 1.2, 3).astype(np.float32), out)
        out *= 1 - 0.35 * np.exp(-np.clip(x - edge - frame / 2, 0, None) / (0.05 * w))  # the frame's shadow
    elif kind == "city_lights":
        out = (base * 0.06 * light).astype(np.float32)
        lights = np.zeros((h, w, 3), np.float32)
        for _ in range(int(rng.integers(15, 50))):
            colour = np.array([1.0, rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.7)]) if rng.random() < 0.7 \
                else rng.uniform(0.3, 1.0, 3)
            centre = (int(rng.uniform(0, w) * 16), int(rng.uniform(0, h) * 16))
            radius = int(rng.uniform(0.015, 0.06) * w * 16)
            cv2.circle(lights, centre, radius, tuple(float(c) for c in colour * rng.uniform(0.2, 1.2)), -1,
                       cv2.LINE_AA, shift=4)
        out = out + cv2.GaussianBlur(lights, (0, 0), 0.004 * w + 0.5)
    elif kind == "foliage":
        green = (np.array([0.12, 0.25, 0.05]) * rng.uniform(0.6, 1.5)).astype(np.float32)
        n = sum(_smooth(rng, size, c, 1) * wgt for c, wgt in ((4, 0.5), (12, 0.3), (40, 0.3)))
        out = green * (0.3 + n) + np.clip(n - 0.9, 0, 1) * np.array([0.8, 0.9, 0.6], np.float32)
    elif kind == "studio":
        y = np.arange(h, dtype=np.float32)[:, None, None]
        r = np.sqrt((x - rng.uniform(0.3, 0.7) * w) ** 2 + (y - rng.uniform(0.2, 0.6) * h) ** 2) / max(h, w)
        out = base * np.clip(1.1 - 1.2 * r, 0.15, 1)
    else:  # an interior out of focus: wall and floor, a bright window, furniture, under uneven light
        y = np.arange(h, dtype=np.float32)[:, None, None]
        horizon = rng.uniform(0.55, 0.95) * h
        wall, floor = base, rng.uniform(0.1, 0.6, 3).astype(np.float32)
        out = np.where(y < horizon, wall, floor) * light
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = rng.uniform(-0.2, 0.9) * w, rng.uniform(0.1, 0.9) * h
            x1, y1 = x0 + rng.uniform(0.05, 0.4) * w, y0 + rng.uniform(0.1, 0.7) * h
            colour = rng.uniform(0.05, 0.8, 3) * float(out.mean())
            cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), tuple(float(c) for c in colour), -1)
        if rng.random() < 0.6:  # a window, brighter than anything else
            x0, y0 = rng.uniform(-0.1, 0.8) * w, rng.uniform(-0.1, 0.4) * h
            x1, y1 = x0 + rng.uniform(0.15, 0.4) * w, y0 + rng.uniform(0.2, 0.5) * h
            glow = np.full(3, 4.0 * float(out.mean())) * rng.uniform(0.9, 1.1, 3)
            cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), tuple(float(c) for c in glow), -1)
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.01, 0.03) * w)
    out = np.asarray(out, np.float32)
    return out * (0.5 / max(float(out.mean()), 1e-3))


def render_background(effect: Effect, size: tuple[int, int], px_scale: float = 1.0) -> np.ndarray:
    """The background image (H, W, 3) of an effect, linear light, mean brightness ``brightness``, blurred by
    ``blur_px`` output pixels (out of focus behind the face; ``px_scale`` render pixels per output pixel)."""
    p = effect.params
    rng = np.random.default_rng(p["seed"])
    if p["kind"] == "photo":
        out = photo_crop(p["photo"], p["region"], size, p["zoom"], p["flip"], rng)
    else:
        out = procedural(p["kind"], size, rng)
    if p["blur_px"] > 0:
        out = cv2.GaussianBlur(out, (0, 0), p["blur_px"] * px_scale)
    return (out * (p["brightness"] / max(float(out.mean()), 1e-3))).astype(np.float32)

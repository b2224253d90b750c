"""High-frequency skin appearance in UV space: albedo with pores, redness, freckles, moles, stubble and beards,
eyebrows and lips drawn hair by hair and line by line, and the roughness / oiliness maps of the specular lobe.

The fitter models albedo as a smooth per-vertex colour; a photo shows texture at every scale. Everything is
drawn on ICT's two skin tiles (tile 0 face, tile 1 back of the head), placed from the landmarks' UVs and
sized in centimetres through the tiles' texel density. Colours are linear-light albedo.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..model.morphable import MorphableModel
from .effects import Effect, effect_rng
from .uvmaps import uv_geometry

TEXTURE_SIZE = 768  # texels per tile side (about 0.5 mm per texel on the cheek, 20 per cm)

# Linear albedo of skin from light to dark (a melanin axis); a case draws a point on it and a hue jitter.
SKIN_LIGHT = np.array([0.72, 0.50, 0.40], np.float32)
SKIN_DARK = np.array([0.13, 0.075, 0.05], np.float32)
# Hair colours (linear albedo): black, dark brown, brown, auburn, dark blonde, blonde, grey.
HAIR_COLOURS = np.array([[0.018, 0.014, 0.012], [0.045, 0.028, 0.018], [0.10, 0.06, 0.035], [0.16, 0.06, 0.03],
                         [0.25, 0.17, 0.09], [0.45, 0.33, 0.18], [0.38, 0.37, 0.36]], np.float32)
HAIR_COLOUR_WEIGHTS = np.array([0.28, 0.24, 0.18, 0.06, 0.1, 0.07, 0.07])
HAIR_ROUGHNESS = 0.4  # hair's sheen is broad
HAIR_SPECULAR = 1.6  # ... and stronger than skin's (keratin, aligned fibres)

# Channels of the skin maps.
ALBEDO = slice(0, 3)
ROUGHNESS = 3
SPECULAR = 4  # multiplier of the skin's Fresnel reflectance (oily skin reflects more)
HAIR = 5  # 1 where the surface shows hair (scalp, beard) rather than skin
BUMP = slice(6, 9)  # a small random vector added to the specular normal (pores, hair grain)
SCALP = 9  # the scalp's hair alone (HAIR also has brows and beards, which belong to the face)
CHANNELS = 10


@dataclass
class SkinMaps:
    """(2, C, S, S) float32: both tiles, channels as above."""

    maps: np.ndarray


def sample_skin_tone(rng: np.random.Generator) -> np.ndarray:
    melanin = rng.beta(1.1, 1.6)
    tone = SKIN_LIGHT ** (1 - melanin) * SKIN_DARK ** melanin  # geometric: hue shifts as in real skin
    return (tone * rng.uniform(0.92, 1.08, 3) ** np.array([1.0, 0.6, 0.8])).astype(np.float32)


def sample_hair_colour(rng: np.random.Generator) -> np.ndarray:
    c = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_COLOUR_WEIGHTS / HAIR_COLOUR_WEIGHTS.sum())]
    return (c * rng.uniform(0.8, 1.2)).astype(np.float32)


def sample_albedo(seed: int, index: int, hair_colour: np.ndarray, male_presenting: bool) -> list[Effect]:
    """The albedo family: skin tone and texture, eyebrows, lips (always); freckles, moles, stubble, beard
    (on some faces)."""
    out = []
    rng = effect_rng(seed, index, "skin_texture")
    out.append(Effect("skin_texture", "albedo", {
        "tone": sample_skin_tone(rng), "variation": rng.uniform(0.04, 0.12), "redness": rng.uniform(0.03, 0.2),
        "pores": rng.uniform(0.03, 0.09), "under_eye": rng.uniform(0.0, 0.18)}))
    rng = effect_rng(seed, index, "eyebrows")
    out.append(Effect("eyebrows", "albedo", {
        "hairs": int(rng.integers(140, 420)), "thickness_cm": rng.uniform(0.45, 0.95),
        "length_cm": rng.uniform(0.5, 1.0), "darkness": rng.uniform(0.65, 1.0),
        "colour": hair_colour * rng.uniform(0.5, 0.9), "arch_cm": rng.uniform(-0.15, 0.25),
        "lashes_cm": rng.uniform(0.06, 0.14)}))
    rng = effect_rng(seed, index, "lips")
    out.append(Effect("lips", "albedo", {
        "tint": np.array([1.0, rng.uniform(0.55, 0.85), rng.uniform(0.6, 0.85)]) * rng.uniform(0.75, 1.0),
        "lines": rng.uniform(0.05, 0.25), "gloss": rng.uniform(0.0, 1.0)}))
    rng = effect_rng(seed, index, "freckles")
    if rng.random() < 0.3:
        out.append(Effect("freckles", "albedo", {
            "count": int(rng.integers(60, 500)), "size_cm": rng.uniform(0.05, 0.14),
            "strength": rng.uniform(0.2, 0.5), "seed": int(rng.integers(2**31))}))
    rng = effect_rng(seed, index, "moles")
    if rng.random() < 0.45:
        out.append(Effect("moles", "albedo", {
            "count": int(rng.integers(1, 5)), "size_cm": rng.uniform(0.12, 0.3), "seed": int(rng.integers(2**31))}))
    rng = effect_rng(seed, index, "facial_hair")
    if male_presenting and rng.random() < 0.6:
        style = str(rng.choice(["stubble", "stubble", "moustache", "goatee", "full"]))
        out.append(Effect("facial_hair", "albedo", {
            "style": style, "density": rng.uniform(0.4, 1.0), "length_cm": rng.uniform(0.3, 1.2),
            "drop_cm": rng.uniform(1.0, 3.0), "colour": hair_colour * rng.uniform(0.7, 1.1),
            "seed": int(rng.integers(2**31))}))
    rng = effect_rng(seed, index, "oily_tzone")
    out.append(Effect("oily_tzone", "reflectance", {
        "tzone_roughness": rng.uniform(0.28, 0.42), "cheek_roughness": rng.uniform(0.45, 0.65),
        "oiliness": rng.uniform(0.8, 1.7)}))
    return out


# -- drawing helpers (tile-0 texel coordinates: x = column, y = row) ---------------------------------------
def _polygon(size: int, points: np.ndarray, feather: float) -> np.ndarray:
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    out = canvas.astype(np.float32) / 255
    return cv2.GaussianBlur(out, (0, 0), feather) if feather > 0 else out


def _blob(size: int, centre, radius: float, aspect: float = 1.0) -> np.ndarray:
    """A Gaussian bump (S, S) of ``radius`` texels (``aspect`` times wider than tall), peak 1."""
    axis = np.arange(size, dtype=np.float32) + 0.5
    gx = np.exp(-0.5 * ((axis - centre[0]) / (radius * aspect)) ** 2)
    gy = np.exp(-0.5 * ((axis - centre[1]) / radius) ** 2)
    return np.outer(gy, gx).astype(np.float32)


def smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Smooth zero-mean unit-ish noise with features about ``scale`` texels wide."""
    cells = max(2, int(size / max(scale, 1.0)))
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def draw_strokes(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, thickness: int = 1) -> None:
    """Antialiased line segments (N, 2) -> (N, 2) drawn with value 255 into a uint8 canvas."""
    segs = np.round(np.stack([start, end], 1) * 16).astype(np.int32)
    cv2.polylines(canvas, list(segs), False, 255, thickness, cv2.LINE_AA, shift=4)


def _curve(points: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points and unit tangents along a polyline (by arc length)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg)]
    t = np.linspace(0, s[-1], n)
    pts = np.stack([np.interp(t, s, points[:, 0]), np.interp(t, s, points[:, 1])], 1)
    tan = np.gradient(pts, axis=0)
    return pts, tan / np.linalg.norm(tan, axis=1, keepdims=True).clip(1e-9)


# -- the maps -----------------------------------------------------------------------------------------------
def skin_maps(model: MorphableModel, effects: list[Effect], hair_mask: np.ndarray, hair_albedo: np.ndarray,
              seed: int, size: int = TEXTURE_SIZE) -> SkinMaps:
    """Both tiles' maps for a case. hair_mask (2, S, S) in [0, 1] and hair_albedo (2, S, S, 3) come from
    :mod:`fitter.synth.hair` (the scalp)."""
    geo = uv_geometry(model, size)
    rng = np.random.default_rng(seed)
    fx = {e.name: e.params for e in effects}
    st = fx["skin_texture"]
    cm = geo.texels_per_cm
    lm = geo.landmarks
    maps = np.zeros((2, CHANNELS, size, size), np.float32)
    tone = np.asarray(st["tone"], np.float32)

    # base tone with blotches at a few scales and a slight hue drift (both tiles)
    for tile in range(2):
        var = (0.6 * smooth_noise(rng, size, cm * 6.0) + 0.3 * smooth_noise(rng, size, cm * 2.0)
               + 0.2 * smooth_noise(rng, size, cm * 0.6))
        hue = smooth_noise(rng, size, cm * 3.0) * (0.5 * st["variation"])
        for c, h in enumerate((0.4, -0.2, -0.4)):
            maps[tile, c] = tone[c] * (1 + st["variation"] * var) * (1 + h * hue)
    face = np.ascontiguousarray(maps[0, ALBEDO].transpose(1, 2, 0))  # (S, S, 3) tile 0, edited below

    def tint(weight: np.ndarray, per_channel) -> None:
        """face *= 1 - weight * per_channel (in place)."""
        for c in range(3):
            if per_channel[c]:
                face[..., c] *= 1 - weight * np.float32(per_channel[c])

    # blood: redder cheeks and nose tip; darker under the eyes
    red = (_blob(size, (lm[[2, 31], 0].mean(), lm[[2, 31], 1].mean() - 0.5 * cm), 1.8 * cm, 1.2)
           + _blob(size, (lm[[14, 35], 0].mean(), lm[[14, 35], 1].mean() - 0.5 * cm), 1.8 * cm, 1.2)
           + 0.8 * _blob(size, lm[30], 0.8 * cm))
    tint(st["redness"] * red, (0.0, 0.35, 0.3))
    for eye in (slice(36, 42), slice(42, 48)):
        c = lm[eye].mean(0) + [0, 0.55 * cm]
        tint(st["under_eye"] * _blob(size, c, 0.45 * cm, 1.8), (0.7, 0.85, 0.75))

    # lips: redder, with vertical lines
    lip_mask = _polygon(size, lm[48:60], 0.08 * cm)
    lp = fx.get("lips")
    if lp:
        x = np.arange(size, dtype=np.float32)[None]
        wobble = 3 * smooth_noise(rng, size, 0.3 * cm)
        lines = 1 - lp["lines"] * (0.5 + 0.5 * np.sin(2 * np.pi * x / (0.09 * cm) + wobble))
        for c in range(3):
            face[..., c] *= 1 + lip_mask * (np.float32(lp["tint"][c]) * lines - 1)

    # freckles and moles: soft dots, freckles where the sun falls (nose, cheeks)
    if "freckles" in fx:
        fr = fx["freckles"]
        frng = np.random.default_rng(fr["seed"])
        density = (red + _blob(size, lm[[27, 30]].mean(0), 1.2 * cm, 1.5)) * geo.covered[0]
        flat = (density / density.sum()).ravel().astype(np.float64)
        idx = frng.choice(flat.size, size=fr["count"], p=flat / flat.sum())
        dots = np.zeros((size, size), np.float32)
        radius = np.maximum(fr["size_cm"] * cm * frng.uniform(0.5, 1.3, fr["count"]), 0.8)
        for i, r in zip(idx, radius):
            cv2.circle(dots, (int(i % size), int(i // size)), int(round(r)), float(frng.uniform(0.4, 1.0)), -1,
                       cv2.LINE_AA)
        tint(fr["strength"] * cv2.GaussianBlur(dots, (0, 0), 0.6), (0.35, 0.55, 0.7))
    if "moles" in fx:
        mo = fx["moles"]
        mrng = np.random.default_rng(mo["seed"])
        top, left = int(lm[19, 1] - 3 * cm), int(lm[0, 0])
        skin_area = geo.covered[0] & (lip_mask < 0.01)
        rows, cols = np.nonzero(skin_area[top:int(lm[8, 1]), left:int(lm[16, 0])])
        dots = np.zeros((size, size), np.float32)
        for _ in range(mo["count"]):
            k = mrng.integers(len(rows))
            cv2.circle(dots, (int(cols[k] + left), int(rows[k] + top)), max(1, int(mo["size_cm"] * cm / 2)), 1.0, -1,
                       cv2.LINE_AA)
        dots = 0.85 * cv2.GaussianBlur(dots, (0, 0), 1.0)
        for c, v in enumerate((0.05, 0.03, 0.02)):
            face[..., c] = face[..., c] * (1 - dots) + v * dots

    # facial hair: stubble is dark follicles and a blue-grey shadow; longer hair is strokes growing down
    beard = np.zeros((size, size), np.float32)
    if "facial_hair" in fx:
        fh = fx["facial_hair"]
        beard = _facial_hair_mask(size, lm, cm, fh)
        brng = np.random.default_rng(fh["seed"])
        follicles = (brng.random((size, size), dtype=np.float32) < 0.25 * fh["density"]).astype(np.float32)
        follicles = np.clip(cv2.GaussianBlur(follicles, (0, 0), 0.7) * 3, 0, 1)
        shade = beard * fh["density"] * (0.35 + 0.4 * follicles)
        ratio = (1 - np.asarray(fh["colour"]) / np.maximum(tone, 1e-3)).clip(0, 0.95)
        tint(shade, ratio)
        if fh["style"] != "stubble":
            canvas = np.zeros((size, size), np.uint8)
            rows, cols = np.nonzero(beard > 0.3)
            n = int(len(rows) * 0.05 * fh["density"])
            weight = beard[rows, cols] ** 2  # sparser towards the edges
            pick = brng.choice(len(rows), size=n, p=weight / weight.sum())
            start = np.stack([cols[pick], rows[pick]], 1).astype(np.float32) + brng.random((n, 2))
            angle = np.pi / 2 + brng.normal(0, 0.3, n) + np.sign(start[:, 0] - lm[30, 0]) * 0.3
            length = fh["length_cm"] * cm * brng.uniform(0.3, 1.0, n)
            draw_strokes(canvas, start, start + np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None])
            strokes = cv2.GaussianBlur(canvas.astype(np.float32) / 255, (0, 0), 0.5)
            hairs = np.clip(strokes * 0.6 + 0.35 * cv2.GaussianBlur(strokes, (0, 0), 0.1 * cm), 0, 0.85)
            hairs *= np.clip(beard * 1.2, 0, 1)
            for c in range(3):
                face[..., c] = face[..., c] * (1 - hairs) + np.float32(fh["colour"][c]) * hairs
            beard = np.maximum(beard * 0.7, hairs)

    # eyebrows, hair by hair along the brow curve (hairs point up at the inner end, outwards elsewhere), and
    # the lash lines along the lids
    brows = np.zeros((size, size), np.float32)
    eb = fx.get("eyebrows")
    brng = np.random.default_rng(rng.integers(2**31))
    if eb:
        canvas = np.zeros((size, size), np.uint8)
        for curve_ids, side in ((range(17, 22), -1), (range(26, 21, -1), 1)):
            pts = lm[list(curve_ids)].astype(np.float64).copy()  # from the outer end to the inner end
            pts[1:-1, 1] -= eb["arch_cm"] * cm * np.sin(np.linspace(0, np.pi, len(pts)))[1:-1]
            centre, tangent = _curve(pts, eb["hairs"])
            t = np.linspace(0, 1, eb["hairs"])  # 0 outer, 1 inner
            normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1) * (1 if side < 0 else -1)  # towards the forehead
            width = eb["thickness_cm"] * cm * (0.45 + 0.55 * t)
            start = centre + normal * (brng.uniform(-0.55, 0.45, len(t)) * width)[:, None] + [0, 0.1 * cm]
            direction = -tangent * (1 - t[:, None] ** 3) + np.array([0.0, -1.5]) * (t[:, None] ** 3) + 0.25 * normal
            direction += brng.normal(0, 0.18, direction.shape)
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            length = eb["length_cm"] * cm * brng.uniform(0.5, 1.0, len(t))
            draw_strokes(canvas, start, start + direction * length[:, None])
        brows = canvas.astype(np.float32) * (eb["darkness"] / 255)
        brows = np.clip(brows + 0.25 * eb["darkness"] * cv2.GaussianBlur(brows, (0, 0), 0.15 * cm), 0, 1)
        for c in range(3):
            face[..., c] = face[..., c] * (1 - brows) + np.float32(eb["colour"][c]) * brows
        lashes = np.zeros((size, size), np.uint8)
        for upper, lower in (([36, 37, 38, 39], [39, 40, 41, 36]), ([42, 43, 44, 45], [45, 46, 47, 42])):
            cv2.polylines(lashes, [np.round(lm[upper] * 16).astype(np.int32)], False, 255,
                          max(1, int(eb["lashes_cm"] * cm)), cv2.LINE_AA, shift=4)
            cv2.polylines(lashes, [np.round(lm[lower] * 16).astype(np.int32)], False, 110,
                          max(1, int(0.4 * eb["lashes_cm"] * cm)), cv2.LINE_AA, shift=4)
        lash = cv2.GaussianBlur(lashes.astype(np.float32) / 255, (0, 0), 0.03 * cm + 0.5) * eb["darkness"]
        for c in range(3):
            face[..., c] = face[..., c] * (1 - lash) + np.float32(eb["colour"][c]) * 0.5 * lash
        brows = np.maximum(brows, lash)

    maps[0, ALBEDO] = face.transpose(2, 0, 1)

    # pores: fine multiplicative albedo grain and a matching normal jitter, on both tiles
    for tile in range(2):
        grain = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32), (0, 0), 0.7)
        maps[tile, ALBEDO] *= 1 + st["pores"] * grain[None]
        for c in range(3):
            maps[tile, BUMP.start + c] = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32),
                                                          (0, 0), 0.8)

    # roughness and oiliness: a shiny T-zone (forehead, nose, chin), drier cheeks, glossy lips
    oil = fx.get("oily_tzone", {"tzone_roughness": 0.45, "cheek_roughness": 0.55, "oiliness": 1.0})
    tzone = np.clip(_blob(size, (lm[27, 0], lm[[27, 30], 1].mean()), 1.4 * cm, 0.6)
                    + _blob(size, (lm[27, 0], lm[19, 1] - 2.2 * cm), 2.2 * cm, 2.0)
                    + 0.7 * _blob(size, (lm[8, 0], lm[8, 1] - 1.0 * cm), 1.0 * cm, 1.3), 0, 1)
    rough = oil["cheek_roughness"] + (oil["tzone_roughness"] - oil["cheek_roughness"]) * tzone
    spec = 1 + (oil["oiliness"] - 1) * tzone
    gloss = lp["gloss"] if lp else 0.0
    rough = rough * (1 - lip_mask) + (0.35 - 0.15 * gloss) * lip_mask
    spec = spec * (1 - lip_mask) + (1.2 + gloss) * lip_mask
    fuzz = np.maximum(brows, beard)
    maps[0, ROUGHNESS] = np.maximum(rough, 0.6 * fuzz)
    maps[0, SPECULAR] = spec * (1 - 0.7 * fuzz)
    maps[1, ROUGHNESS], maps[1, SPECULAR] = oil["cheek_roughness"], 1.0
    maps[0, HAIR] = np.maximum(beard * 0.8, brows)

    # the scalp's hair over everything on both tiles
    for tile in range(2):
        hm = hair_mask[tile]
        for c in range(3):
            maps[tile, c] = maps[tile, c] * (1 - hm) + hair_albedo[tile, ..., c] * hm
        maps[tile, ROUGHNESS] = maps[tile, ROUGHNESS] * (1 - hm) + HAIR_ROUGHNESS * hm
        maps[tile, SPECULAR] = maps[tile, SPECULAR] * (1 - hm) + HAIR_SPECULAR * hm
        maps[tile, HAIR] = np.maximum(maps[tile, HAIR], hm)
        maps[tile, SCALP] = hm
    np.clip(maps[:, ALBEDO], 0.004, 0.95, out=maps[:, ALBEDO])
    return SkinMaps(maps)


def _facial_hair_mask(size: int, lm: np.ndarray, cm: float, fh: dict) -> np.ndarray:
    """Soft mask (S, S) of where the facial-hair style grows (tile-0 texels)."""
    drop = fh["drop_cm"] * cm
    mouth = _polygon(size, lm[48:60], 0.05 * cm)
    moustache = _polygon(size, np.concatenate([lm[31:36] + [0, 0.15 * cm], lm[54:47:-1] - [0, 0.1 * cm]])
                         * [1, 1], 0.12 * cm)
    chin = _blob(size, (lm[8, 0], lm[[57, 8], 1].mean()), 1.1 * cm, 1.1)
    if fh["style"] == "moustache":
        mask = moustache
    elif fh["style"] == "goatee":
        mask = np.maximum(moustache, (chin > 0.35).astype(np.float32))
    else:  # stubble, full: the whole beard area, from the cheek line to below the jaw
        top = np.concatenate([lm[[1]], [(lm[3] + lm[31]) / 2 + [0, -0.3 * cm]], lm[31:36] + [0, 0.15 * cm],
                              [(lm[13] + lm[35]) / 2 + [0, -0.3 * cm]], lm[[15]]])
        bottom = lm[15:0:-1] + [0, drop]
        mask = _polygon(size, np.concatenate([top, bottom]), 0.5 * cm)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.25 * cm) * (1 - np.clip(mouth * 1.5, 0, 1))
    return np.clip(mask, 0, 1)

"""What a camera does to the light that reaches it: lens softness, defocus and motion blur, vignetting, metering and an
exposure bias, a white-balance cast, signal-dependent sensor noise, a tone curve, sharpening, 8-bit sRGB and
JPEG compression. Applied in that (physical) order to a linear image at the output resolution.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..common.colour import linear_to_srgb
from .effects import Effect, effect_rng, find

METERING_TARGET = 0.2  # linear mean the metering aims for (a mid-grey scene) before the exposure bias
FACE_METERING_WEIGHT = 0.9  # face-priority metering (as cameras that detect faces do): the face's share


def sample_camera(seed: int, index: int) -> list[Effect]:
    rng = effect_rng(seed, index, "lens_softness")
    out = [Effect("lens_softness", "camera", {"sigma_px": rng.uniform(0.3, 0.8)})]  # no lens is perfectly sharp
    rng = effect_rng(seed, index, "defocus")
    if rng.random() < 0.2:
        out.append(Effect("defocus", "camera", {"radius_px": rng.uniform(0.8, 2.8)}))
    rng = effect_rng(seed, index, "motion_blur")
    if rng.random() < 0.15:
        out.append(Effect("motion_blur", "camera", {"length_px": rng.uniform(2.0, 8.0),
                                                    "angle_deg": rng.uniform(0, 180)}))
    rng = effect_rng(seed, index, "vignetting")
    if rng.random() < 0.4:
        out.append(Effect("vignetting", "camera", {"strength": rng.uniform(0.1, 0.45)}))
    rng = effect_rng(seed, index, "exposure")
    out.append(Effect("exposure", "camera", {"ev": rng.uniform(-0.8, 0.7)}))
    rng = effect_rng(seed, index, "white_balance")
    if rng.random() < 0.7:
        out.append(Effect("white_balance", "camera", {"temperature": rng.normal(0, 0.15), "tint": rng.normal(0, 0.05)}))
    rng = effect_rng(seed, index, "sensor_noise")
    out.append(Effect("sensor_noise", "camera", {"shot": float(np.exp(rng.uniform(np.log(5e-5), np.log(1.5e-3)))),
                                                 "read": float(np.exp(rng.uniform(np.log(1e-7), np.log(3e-5)))),
                                                 "seed": int(rng.integers(2**31))}))
    rng = effect_rng(seed, index, "tone_curve")
    out.append(Effect("tone_curve", "camera", {"contrast": rng.uniform(0.0, 0.35)}))
    rng = effect_rng(seed, index, "sharpening")
    if rng.random() < 0.35:
        out.append(Effect("sharpening", "camera", {"amount": rng.uniform(0.3, 1.0), "sigma_px": rng.uniform(0.7, 1.5)}))
    rng = effect_rng(seed, index, "jpeg")
    if rng.random() < 0.85:
        out.append(Effect("jpeg", "camera", {"quality": int(rng.integers(30, 96))}))
    return out


def disc_kernel(radius: float) -> np.ndarray:
    """An antialiased disc (the out-of-focus image of a point), summing to 1."""
    r = int(np.ceil(radius)) + 1
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    k = np.clip(radius + 0.5 - np.hypot(x, y), 0, 1).astype(np.float32)
    return k / k.sum()


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A line segment (the path of a point during the exposure), summing to 1."""
    r = int(np.ceil(length / 2)) + 1
    k = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    a = np.radians(angle_deg)
    d = np.array([np.cos(a), np.sin(a)]) * length / 2
    p0 = np.round((np.array([r, r]) - d) * 16).astype(int)
    p1 = np.round((np.array([r, r]) + d) * 16).astype(int)
    cv2.line(k, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 255, 1, cv2.LINE_AA, shift=4)
    k = k.astype(np.float32)
    return k / k.sum()


def apply_optics(image: np.ndarray, effects: list[Effect]) -> np.ndarray:
    """Lens softness, defocus, motion blur and vignetting of a linear (H, W, 3) image."""
    e = find(effects, "lens_softness")
    if e:
        image = cv2.GaussianBlur(image, (0, 0), e.params["sigma_px"], borderType=cv2.BORDER_REFLECT)
    e = find(effects, "defocus")
    if e:
        image = cv2.filter2D(image, -1, disc_kernel(e.params["radius_px"]), borderType=cv2.BORDER_REFLECT)
    e = find(effects, "motion_blur")
    if e:
        image = cv2.filter2D(image, -1, line_kernel(e.params["length_px"], e.params["angle_deg"]),
                             borderType=cv2.BORDER_REFLECT)
    e = find(effects, "vignetting")
    if e:
        h, w = image.shape[:2]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((x - w / 2) ** 2 + (y - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        image = image * (1 - e.params["strength"] * r2)[..., None]
    return image


def apply_sensor(image: np.ndarray, effects: list[Effect], face_mask: np.ndarray) -> np.ndarray:
    """Metering (centre-weighted on the face) with the exposure bias, the white-balance cast, and noise
    whose variance grows with the signal (shot noise) over a floor (read noise); linear in, linear out."""
    lum = image @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    face = float(lum[face_mask].mean()) if face_mask.any() else float(lum.mean())
    reading = FACE_METERING_WEIGHT * face + (1 - FACE_METERING_WEIGHT) * float(lum.mean())
    e = find(effects, "exposure")
    gain = METERING_TARGET / max(reading, 1e-4) * 2.0 ** (e.params["ev"] if e else 0.0)
    image = image * gain
    e = find(effects, "white_balance")
    if e:
        t, g = e.params["temperature"], e.params["tint"]
        image = image * np.exp(np.array([t, g, -t], np.float32))
    e = find(effects, "sensor_noise")
    if e:
        rng = np.random.default_rng(e.params["seed"])
        var = e.params["shot"] * np.clip(image, 0, None) + e.params["read"]
        image = image + rng.standard_normal(image.shape).astype(np.float32) * np.sqrt(var).astype(np.float32)
    return np.clip(image, 0, 1)


def encode(image: np.ndarray, effects: list[Effect]) -> np.ndarray:
    """Tone curve, sRGB, sharpening, 8 bits and JPEG: linear (H, W, 3) in [0, 1] -> uint8 RGB."""
    srgb = linear_to_srgb(image).astype(np.float32)
    e = find(effects, "tone_curve")
    if e and e.params["contrast"] > 0:  # an S-curve about mid-grey, as cameras render
        c = e.params["contrast"]
        srgb = srgb + c * srgb * (1 - srgb) * (2 * srgb - 1) * 2
    e = find(effects, "sharpening")
    if e:
        blurred = cv2.GaussianBlur(srgb, (0, 0), e.params["sigma_px"])
        srgb = srgb + e.params["amount"] * (srgb - blurred)
    out = (np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    e = find(effects, "jpeg")
    if e:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(e.params["quality"])])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG; check the opencv-python install")
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out

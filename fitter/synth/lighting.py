"""Light of wild renders: a key light (a direction, an intensity, a colour temperature, and an extent that
softens its shadows) and a dim coloured environment (sky above, bounce below, a fill from one side) as
second-order SH radiance, the form fitter.render.sh_shading reads.
"""
from __future__ import annotations

import numpy as np
import torch

from ..render import sh_directional, sh_rotation
from .effects import Effect, effect_rng


def kelvin_tint(temperature: float) -> np.ndarray:
    """A light's RGB relative to white for a colour-temperature offset in [-1 (warm), 1 (cool)]."""
    return np.exp(np.array([-0.25, 0.0, 0.25]) * temperature).astype(np.float32)


def sample_lighting(seed: int, index: int) -> list[Effect]:
    rng = effect_rng(seed, index, "lighting")
    azimuth = np.radians(rng.uniform(-110, 110))  # 0 = from the camera, positive = from the image's right
    elevation = np.radians(rng.uniform(-10, 60))
    key = np.array([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation), -np.cos(azimuth) * np.cos(elevation)])
    return [Effect("lighting", "lighting", {
        "key_direction": key, "key_intensity": rng.uniform(0.6, 1.6), "key_temperature": rng.uniform(-0.8, 0.8),
        "key_softness_cm": float(np.exp(rng.uniform(np.log(0.03), np.log(0.8)))),
        "ambient": rng.uniform(0.08, 0.45), "sky": rng.uniform(0.0, 0.4), "sky_temperature": rng.uniform(-0.2, 0.9),
        "fill": rng.uniform(0.0, 0.35), "fill_azimuth_deg": rng.uniform(-120, 120),
        "bounce": rng.uniform(0.0, 0.15)})]


def seen_from(effect: Effect, rotation: np.ndarray) -> Effect:
    """The light of ``effect`` fixed in the world and seen by a camera whose world -> camera rotation is
    ``rotation`` (the views of a rig share one light; each sees it from its own side)."""
    frame = np.asarray(rotation, np.float64) @ _frame(effect)
    return Effect(effect.name, effect.family, {**effect.params, "frame": frame})


def _frame(effect: Effect) -> np.ndarray:
    """Rotation from the frame the light was drawn in to the camera's (the identity for a single photo)."""
    return np.asarray(effect.params.get("frame", np.eye(3)), np.float64)


def key_light(effect: Effect) -> tuple[torch.Tensor, torch.Tensor]:
    """(direction (3,) towards the light, camera frame; radiance (3,) RGB)."""
    p = effect.params
    d = torch.as_tensor((_frame(effect) @ np.asarray(p["key_direction"], np.float64)).astype(np.float32))
    return d / d.norm(), torch.as_tensor(p["key_intensity"] * kelvin_tint(p["key_temperature"]))


def environment_sh(effect: Effect) -> torch.Tensor:
    """(9, 3) SH radiance of everything but the key light."""
    p = effect.params
    sky = kelvin_tint(p["sky_temperature"])
    a = np.radians(p["fill_azimuth_deg"])
    sh = sh_directional((0, 0, -1), diffuse=0.0, ambient=p["ambient"])
    sh = sh + sh_directional((0, -1, -0.2), diffuse=p["sky"], colour=tuple(sky))
    sh = sh + sh_directional((np.sin(a), 0.1, -np.cos(a)), diffuse=p["fill"])
    sh = sh + sh_directional((0, 1, -0.3), diffuse=p["bounce"], colour=(1.0, 0.9, 0.8))
    return (sh_rotation(_frame(effect)) @ sh.float()).float()

"""Skin-like reflectance for wild renders: a microfacet specular lobe and a softened (subsurface-like)
diffuse term, on packed per-pixel values (N, ...) in the camera frame.

Specular: GGX (Trowbridge-Reitz) distribution, Smith-Schlick masking and Schlick's Fresnel, for the key
light; a dim environment reflection (the environment's radiance seen along the mirror direction, weighted by
Fresnel and gloss) stands for the rest of the room. Diffuse: the irradiance is blurred over the image with
a wider kernel in red than in blue before it meets the albedo (light entering skin leaves it a few mm away,
red light farthest), which softens shadow edges and reddens them.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as nnf

from ..render import sh_basis

SKIN_F0 = 0.028  # normal-incidence reflectance of skin (refractive index about 1.4)
MIN_ROUGHNESS = 0.03  # GGX is singular at 0


def fresnel_schlick(cos: torch.Tensor, f0) -> torch.Tensor:
    return f0 + (1 - f0) * (1 - cos.clamp(0, 1)) ** 5


def ggx_specular(normals: torch.Tensor, view: torch.Tensor, light_dir: torch.Tensor, roughness: torch.Tensor,
                 f0: torch.Tensor) -> torch.Tensor:
    """(N,) reflected radiance per unit key-light intensity (the intensity of a light whose diffuse term is
    albedo * intensity * cos): pi * BRDF_spec * cos(theta_l). normals, view (towards the camera) (N, 3);
    light_dir (3,) towards the light; roughness, f0 (N,)."""
    a = roughness.clamp(min=MIN_ROUGHNESS) ** 2
    h = nnf.normalize(view + light_dir[None], dim=-1)
    nl = (normals @ light_dir).clamp(min=0)
    nv = (normals * view).sum(-1).clamp(min=1e-4)
    nh = (normals * h).sum(-1).clamp(min=0)
    vh = (view * h).sum(-1).clamp(min=0)
    d = a * a / (math.pi * (nh * nh * (a * a - 1) + 1) ** 2)
    k = a / 2
    g = (nl / (nl * (1 - k) + k)) * (nv / (nv * (1 - k) + k))
    brdf = d * g * fresnel_schlick(vh, f0) / (4 * nl.clamp(min=1e-4) * nv)
    return math.pi * brdf * nl


def environment_specular(normals: torch.Tensor, view: torch.Tensor, roughness: torch.Tensor, f0: torch.Tensor,
                         env_sh: torch.Tensor) -> torch.Tensor:
    """(N, 3) the environment seen in the mirror direction, dimmed by roughness (a rough surface spreads
    it; the smooth SH environment has no detail to blur) and weighted by Fresnel at the view angle."""
    nv = (normals * view).sum(-1, keepdim=True)
    mirror = nnf.normalize(2 * nv * normals - view, dim=-1)
    radiance = (sh_basis(mirror) @ env_sh).clamp(min=0)
    gloss = (1 - roughness.clamp(0, 1))[:, None] ** 2
    return fresnel_schlick(nv[:, 0], f0)[:, None] * gloss * radiance


def subsurface_blur(irradiance: np.ndarray, mask: np.ndarray, sigma_px: np.ndarray, mix: float) -> np.ndarray:
    """Blur an (H, W, 3) irradiance image per channel (sigmas in pixels, red widest) within ``mask`` (a
    mask-normalised blur, so light does not bleed in from the background), and mix it with the sharp one."""
    m = mask.astype(np.float32)
    out = irradiance.copy()
    for c in range(3):
        s = float(sigma_px[c])
        if s < 0.3:
            continue
        num = cv2.GaussianBlur(irradiance[..., c] * m, (0, 0), s)
        den = cv2.GaussianBlur(m, (0, 0), s)
        blurred = num / np.maximum(den, 1e-4)
        out[..., c] = np.where(mask, (1 - mix) * irradiance[..., c] + mix * blurred, irradiance[..., c])
    return out

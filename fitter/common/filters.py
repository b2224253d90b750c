"""Image filters on batched torch images (frames x H x W x C), shared by the energies that compare images."""
from __future__ import annotations

import cv2
import numpy as np
import torch

# A Gaussian kernel is cut at this many sigmas (the weights beyond are below 1 %).
KERNEL_RADIUS_SIGMAS = 3


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (F, H, W, C) images (zero padding)."""
    radius = max(1, int(KERNEL_RADIUS_SIGMAS * sigma))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    f, h, w, c = x.shape
    y = x.permute(0, 3, 1, 2).reshape(f * c, 1, h, w)
    y = torch.nn.functional.conv2d(y, k.view(1, 1, 1, -1), padding=(0, radius))
    y = torch.nn.functional.conv2d(y, k.view(1, 1, -1, 1), padding=(radius, 0))
    return y.reshape(f, c, h, w).permute(0, 2, 3, 1)


def masked_blur(x: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mask-normalised Gaussian blur (F, H, W, C): the local mean of ``x`` over the pixels inside ``mask``."""
    return gaussian_blur(x * mask, sigma) / gaussian_blur(mask, sigma).clamp(min=1e-6)


def high_pass(x: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """x minus its mask-normalised Gaussian blur: the detail of x inside the mask (F, H, W, C)."""
    return (x - masked_blur(x, mask, sigma)) * mask


def morphology(masks: torch.Tensor, radius: int, dilate: bool = False) -> torch.Tensor:
    """Per-frame erosion (or dilation) of boolean masks (F, H, W) by a disc of ``radius`` pixels."""
    if radius <= 0:
        return masks
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    op = cv2.dilate if dilate else cv2.erode
    return torch.stack([torch.as_tensor(op(m.cpu().numpy().astype(np.uint8), kernel, borderValue=0) > 0,
                                        device=masks.device) for m in masks])

"""Bilinear look-up of UV maps, one implementation for torch tensors (differentiable in the map and the UVs:
bump mapping while fitting) and numpy arrays (the detail mesh's displacement, the exported normal map).

OBJ UVs: texel (r, c) of an (H, W) map of UDIM tile ``tile`` is centred at u = tile + (c + 0.5) / W,
v = 1 - (r + 0.5) / H (v up, row 0 at the top). Between the outermost texel centres and the map's edge, and
beyond it, the edge texels are repeated (clamp).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf


def sample_maps(maps: torch.Tensor, uv: torch.Tensor, tile: int = 0) -> torch.Tensor:
    """Bilinear samples of maps (B, C, H, W) at UVs (B, ..., 2) of tile ``tile``: (B, C, ...)."""
    grid = uv.reshape(uv.shape[0], 1, -1, 2)
    # grid_sample's coordinates: -1 and 1 are the map's outer edges, y down
    grid = torch.stack([2.0 * (grid[..., 0] - tile) - 1.0, 1.0 - 2.0 * grid[..., 1]], -1).to(maps.dtype)
    out = nnf.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(*maps.shape[:2], *uv.shape[1:-1])


def sample_map(image: np.ndarray, uv: np.ndarray, tile: int = 0) -> np.ndarray:
    """Bilinear look-up of ``image`` (H, W) or (H, W, C) at UVs (N, 2) of tile ``tile``: (N,) or (N, C) float64."""
    img = np.asarray(image, np.float64)
    if not img.flags.writeable:  # torch wants memory it may write (it will not)
        img = img.copy()
    maps = torch.from_numpy(img)
    maps = maps[None, None] if img.ndim == 2 else maps.permute(2, 0, 1)[None]
    uv = torch.from_numpy(np.array(uv, np.float64))[None]
    out = sample_maps(maps, uv, tile)[0]  # (C, N)
    return (out[0] if img.ndim == 2 else out.T.contiguous()).numpy()

"""Per-pixel attributes from fragments, and texture look-ups."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf

from .fragments import Fragments


def interpolate_packed(
    frags: Fragments, attributes: torch.Tensor, triangles: torch.Tensor | np.ndarray | None = None
) -> torch.Tensor:
    """Like :func:`interpolate` but returns only the covered pixels, (N, C) in ``frags.pix_index`` order."""
    if triangles is None:
        triangles = frags.triangles
    triangles = torch.as_tensor(triangles, device=attributes.device).long()
    if triangles.shape[0] != frags.triangles.shape[0]:
        raise ValueError(
            f"triangles for the attribute ({triangles.shape[0]}) must match the rasterized triangles "
            f"({frags.triangles.shape[0]}) one to one"
        )
    idx = triangles[frags.pix_triangle]  # (N, 3)
    if attributes.dim() == 2:
        table = attributes
    elif attributes.dim() == 3 and attributes.shape[0] == 1:
        table = attributes[0]
    elif attributes.dim() == 3 and attributes.shape[0] == frags.frames:
        n = attributes.shape[1]
        table = attributes.reshape(-1, attributes.shape[-1])
        idx = idx + (frags.pix_frame * n)[:, None]
    else:
        raise ValueError(
            f"attributes must be (V, C), (1, V, C) or ({frags.frames}, V, C), got {tuple(attributes.shape)}"
        )
    corner = table.index_select(0, idx.reshape(-1)).reshape(-1, 3, table.shape[-1])  # (N, 3, C)
    bary = frags.pix_bary.to(corner.dtype)
    return torch.bmm(bary[:, None, :], corner)[:, 0]


def interpolate(
    frags: Fragments,
    attributes: torch.Tensor,
    triangles: torch.Tensor | np.ndarray | None = None,
    background: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Interpolate an attribute over the image with the fragments' perspective-correct barycentrics.

    attributes: (F, V, C), (1, V, C) or (V, C) — colours, normals, UVs, one-hot part labels, positions...
    triangles: the (T, 3) indices of the attribute's own table, one row per rasterized triangle. Leave it
    None (or pass the rasterized triangles) for per-vertex attributes; pass ``Topology.triangle_uvs`` with
    ``attributes = uvs`` to interpolate face-varying UVs, whose seams do not follow the vertices.
    Returns (F, H, W, C), ``background`` where no triangle is seen: a number (default 0), a (C,) colour or
    an (F | 1, H, W, C) image such as the photo. Gradients flow to the attributes and, through the
    barycentrics, to the vertex positions.
    """
    values = interpolate_packed(frags, attributes, triangles)
    return frags.scatter(values, background)


def sample_texture(
    uv_image: torch.Tensor,
    texture: torch.Tensor,
    mask: torch.Tensor | None = None,
    mode: str = "bilinear",
    padding_mode: str = "border",
) -> torch.Tensor:
    """Look up a texture at per-pixel UVs (OBJ convention: v up, row 0 of the texture is v = 1).

    uv_image: (F, H, W, 2) or (1, H, W, 2) UVs, e.g. ``interpolate(frags, uvs, topology.triangle_uvs)``.
    texture: (F | 1, C, Ht, Wt) for one UV tile, u in [0, 1]; or (F | 1, n_tiles, C, Ht, Wt) for UDIM
    tiles side by side along u (tile k = UDIM 1001 + k covers u in [k, k + 1]); each pixel reads the tile
    floor(u) (clamped to the tiles given) at u - k, so there is no bleeding across tile seams.
    Outside [0, 1] within a tile, ``padding_mode`` applies (grid_sample's ``border``, ``zeros`` or
    ``reflection``). The ICT face uses tile 0; its back of the head is tile 1.
    mask: optional (F, H, W) bool; pixels outside it are set to 0 (the UVs there are meaningless).
    Texel centres sit at u = (c + 0.5) / Wt, v = 1 - (r + 0.5) / Ht, matching :func:`fitter.render.render_uv`.
    Returns (F, H, W, C); differentiable w.r.t. the texture and the UVs.
    """
    if texture.dim() == 4:
        out = _sample_tile(uv_image, texture, mode, padding_mode)
    elif texture.dim() == 5:
        n_tiles = texture.shape[1]
        tile = torch.floor(uv_image[..., 0].detach()).clamp(0, n_tiles - 1)
        out = None
        for k in range(n_tiles):
            shifted = torch.stack([uv_image[..., 0] - k, uv_image[..., 1]], dim=-1)
            sampled = _sample_tile(shifted, texture[:, k], mode, padding_mode)
            sel = (tile == k)[..., None]
            out = torch.where(sel, sampled, torch.zeros_like(sampled) if out is None else out)
    else:
        raise ValueError(f"texture must be (F, C, Ht, Wt) or (F, tiles, C, Ht, Wt), got {tuple(texture.shape)}")
    if mask is not None:
        out = out * mask[..., None].to(out.dtype)
    return out


def _sample_tile(uv: torch.Tensor, texture: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    F = max(uv.shape[0], texture.shape[0])
    grid = torch.stack([2.0 * uv[..., 0] - 1.0, 1.0 - 2.0 * uv[..., 1]], dim=-1).to(texture.dtype)
    if grid.shape[0] != F:
        grid = grid.expand(F, *grid.shape[1:])
    if texture.shape[0] != F:
        texture = texture.expand(F, *texture.shape[1:])
    out = nnf.grid_sample(texture, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.permute(0, 2, 3, 1)

"""``albedo.png``: the fitted (linear) albedo as an 8-bit sRGB map of the face UV tile."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..common.arrays import as_numpy, texel_mask
from ..common.colour import linear_to_srgb
from ..common.filters import dilate_map
from ..model.topology import FACE_MATERIAL, Topology
from ..render import render_uv
from .png import write_png
from .uv_layout import UV_LAYOUT, face_triangles

NO_ISLAND_COLOUR = 0.5  # background of a map without any covered texel (mid grey)


def write_albedo(folder: Path, albedo, mask=None, linear: bool = True, dilate_px: int = 8,
                 stem: str = "albedo") -> Path:
    """Write ``albedo.png``: 8-bit sRGB RGB (with an sRGB chunk).

    albedo: (3, S, S) (or (1, 3, S, S), numpy or torch) in [0, 1], row 0 at v = 1; **linear** RGB by default
    (facefit's fitted albedo is linear: it multiplies the linear SH shading) and converted with
    :func:`fitter.common.colour.linear_to_srgb`; pass ``linear=False`` for data already in sRGB. mask: (S, S)
    texels inside the UV islands; values are dilated ``dilate_px`` texels beyond them, the rest is the
    islands' mean colour.
    """
    a = as_numpy(albedo).astype(np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[0] != 3:
        raise ValueError(f"albedo must be (3, S, S), got {a.shape}")
    a = a.transpose(1, 2, 0)
    m = texel_mask(mask, a.shape[:2])
    mean = a[m].mean(0) if m.any() else np.full(3, NO_ISLAND_COLOUR)
    a = dilate_map(np.where(m[..., None], a, 0.0), m, dilate_px, fill=mean)
    srgb = linear_to_srgb(a) if linear else np.clip(a, 0.0, 1.0)
    codes = np.round(srgb * 255.0).astype(np.uint8)
    text = {"facefit:colorspace": "sRGB (converted from the fitted linear albedo)" if linear else "sRGB",
            "facefit:uv_layout": UV_LAYOUT, "Software": f"facefit {__version__}"}
    return write_png(Path(folder) / f"{stem}.png", codes, text, srgb=True)


def albedo_map_from_vertices(vertex_albedo, topology: Topology, size=1024,
                             material: str | None = FACE_MATERIAL) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex albedo (V, 3) (e.g. ``AlbedoBasis.per_vertex``) -> a UV map (3, S, S) of the face tile and
    its mask (S, S), interpolated over the face material's triangles with :func:`fitter.render.render_uv`
    (linear in, linear out: pass the result to :func:`write_albedo`)."""
    colours = torch.as_tensor(as_numpy(vertex_albedo), dtype=torch.float64).reshape(-1, 3)
    maps, mask = render_uv(colours, topology.triangles, topology.triangle_uvs, topology.uvs, size,
                           triangle_subset=face_triangles(topology, material))
    return maps[0].numpy(), mask.numpy()

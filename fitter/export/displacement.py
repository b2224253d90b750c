"""``displacement.exr`` (32-bit float, cm) and ``displacement.png`` (16-bit, value = png / 65535 * scale +
offset): the fitted displacement map for DCC tools. See docs/exports.md for the conventions in full.

- ``displacement.exr``: channel ``Y``, **centimetres** along the vertex normals of mesh.obj
  (p' = p + d(uv) n); its header says ``units`` cm, ``scale`` 1, ``offset`` 0.
- ``displacement.png``: 16-bit grey, value_cm = png / 65535 * scale + offset (scale and offset in the PNG's
  tEXt chunks and returned to the caller for params.npz).

Values are dilated a few texels beyond the UV islands so that bilinear and mip-mapped look-ups at island
borders do not blend in the empty background; further out the map is 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from ..common.arrays import scalar_map, texel_mask
from ..common.filters import dilate_map
from .exr import write_exr
from .png import read_png_text, write_png
from .uv_layout import UV_LAYOUT

DISPLACEMENT_MEANING = "offset along the vertex normals of mesh.obj (p' = p + d * n), same UVs as mesh.obj"
PNG16_TOP = 65535  # the largest 16-bit code
PNG16_FORMULA = "value_cm = png / 65535 * scale + offset"


def png16_scale_offset(values: np.ndarray) -> tuple[float, float]:
    """(scale, offset) so that [min, max] of ``values`` and 0 map into [0, 65535]: offset = min(values, 0),
    scale = max(values, 0) - offset (1 when everything is 0)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    lo = min(float(v.min()) if v.size else 0.0, 0.0)
    hi = max(float(v.max()) if v.size else 0.0, 0.0)
    scale = hi - lo
    return (scale if scale > 0 else 1.0), lo


def encode_png16(values: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """uint16 codes: round((value - offset) / scale * 65535), clipped to [0, 65535]."""
    q = np.round((np.asarray(values, np.float64) - offset) / scale * PNG16_TOP)
    return np.clip(np.nan_to_num(q), 0, PNG16_TOP).astype(np.uint16)


def decode_png16(codes: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """value_cm = png / 65535 * scale + offset (float64)."""
    return np.asarray(codes, np.float64) / PNG16_TOP * scale + offset


def write_displacement(folder: Path, disp_cm, mask=None, dilate_px: int = 8, compression: str = "zip",
                       stem: str = "displacement", png: bool = True) -> dict:
    """Write ``displacement.exr`` (float32, cm) and ``displacement.png`` (16-bit) into ``folder``.

    disp_cm: (H, W) (or (1, 1, H, W), numpy or torch) displacement in centimetres along mesh.obj's vertex
    normals over the M_Face UV tile, row 0 at v = 1. mask: (H, W) bool, the texels inside the UV islands
    (e.g. :func:`fitter.export.uv_layout.uv_mask`); values are dilated ``dilate_px`` texels beyond them and
    0 further out. None: all texels are valid.

    Returns ``{"scale", "offset", "units": "cm", "files", "quantisation_cm", "size"}``: the PNG decodes as
    value_cm = png / 65535 * scale + offset (store scale/offset in params.npz); the EXR holds value_cm itself
    (its header says ``scale`` 1, ``offset`` 0).
    """
    folder = Path(folder)
    d = scalar_map(disp_cm)
    m = texel_mask(mask, d.shape)
    d = dilate_map(np.where(m, d, 0.0), m, dilate_px, fill=0.0)
    files = []
    common = {"units": "cm", "meaning": DISPLACEMENT_MEANING, "uvLayout": UV_LAYOUT,
              "software": f"facefit {__version__}"}
    write_exr(folder / f"{stem}.exr", d.astype(np.float32), compression,
              {**common, "scale": 1.0, "offset": 0.0})
    files.append(f"{stem}.exr")
    scale, offset = png16_scale_offset(d)
    if png:
        text = {"facefit:scale": repr(scale), "facefit:offset": repr(offset), "facefit:units": "cm",
                "facefit:formula": PNG16_FORMULA, "facefit:meaning": DISPLACEMENT_MEANING,
                "facefit:uv_layout": UV_LAYOUT, "Software": f"facefit {__version__}"}
        write_png(folder / f"{stem}.png", encode_png16(d, scale, offset), text)
        files.append(f"{stem}.png")
    return {"scale": scale, "offset": offset, "units": "cm", "files": files,
            "quantisation_cm": scale / PNG16_TOP, "size": list(d.shape)}


def read_displacement_png(path: Path) -> tuple[np.ndarray, dict]:
    """Decode a ``displacement.png`` written by :func:`write_displacement`: (values_cm (H, W), its text)."""
    text = read_png_text(path)
    if "facefit:scale" not in text or "facefit:offset" not in text:
        raise ValueError(f"{path}: no facefit:scale / facefit:offset text; not a displacement.png of facefit")
    with Image.open(path) as im:
        codes = np.asarray(im)
    return decode_png16(codes, float(text["facefit:scale"]), float(text["facefit:offset"])), text

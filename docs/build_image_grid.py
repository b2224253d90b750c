"""Build docs/images/examples_grid.jpg from a `facefit fit --preset vfx` output folder.

One row per fitted face: the input photo, overlay.png, a grey shaded render of mesh_detail.obj (the
displaced dense mesh, under a fixed light, seen by the fitted camera) and displacement.png (colour-mapped,
symmetric around zero), each cropped to the face.

    python docs/build_image_grid.py out_vfx docs/images/examples_grid.jpg
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from fitter.io import load_image
from fitter.model.obj_reader import read_obj
from fitter.render import rasterize, shade_grey

TILE = 256


def detail_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and fan-triangulated faces (T, 3) of an OBJ."""
    mesh = read_obj(path)
    tris = [[face[0], face[k], face[k + 1]] for face in mesh.faces for k in range(1, len(face) - 1)]
    return mesh.vertices.astype(np.float32), np.asarray(tris, np.int64).reshape(-1, 3)


def grey_detail_render(folder: Path, size: tuple[int, int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Grey render (scale * H, scale * W) of mesh_detail.obj through the fitted camera, and its mask."""
    params = np.load(folder / "params.npz")
    verts, tris = detail_mesh(folder / "mesh_detail.obj")
    cam = verts @ params["R"].T.astype(np.float32) + params["t"].reshape(1, 3).astype(np.float32)
    cam_t = torch.as_tensor(cam)[None]
    K = torch.as_tensor(params["K"], dtype=torch.float32).reshape(1, 3, 3).clone()
    K[:, :2] *= scale  # pixel-corner origin: scaling the image scales the principal point too
    frags = rasterize(cam_t, torch.as_tensor(tris), K, (round(size[0] * scale), round(size[1] * scale)))
    grey = shade_grey(frags, cam_t, torch.as_tensor(tris), background=1.0)[0, ..., 0].numpy()
    return grey, frags.mask[0].numpy()


def displacement_tile(folder: Path) -> np.ndarray:
    """displacement.png in cm, colour-mapped symmetric around zero (blue groove, red ridge)."""
    params = np.load(folder / "params.npz")
    png = cv2.imread(str(folder / "displacement.png"), cv2.IMREAD_UNCHANGED).astype(np.float32)
    d = png / 65535.0 * float(params["displacement_scale"]) + float(params["displacement_offset"])
    ys, xs = np.nonzero(np.abs(d) > 1e-6)
    if len(xs):  # the face tile's fitted texels, not the whole UV square
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        d = d[max(cy - side // 2, 0):cy + side // 2 + 1, max(cx - side // 2, 0):cx + side // 2 + 1]
    limit = max(float(np.abs(d).max()), 1e-6)
    colour = cv2.applyColorMap(np.clip(127.5 + 127.5 * d / limit, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.resize(colour, (TILE, TILE), interpolation=cv2.INTER_AREA)


def crop_box(mask: np.ndarray, margin: float = 0.15) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    half = max(xs.max() - xs.min(), ys.max() - ys.min()) * (0.5 + margin)
    return int(cx - half), int(cy - half), int(cx + half), int(cy + half)


def cut(image: np.ndarray, box: tuple[int, int, int, int], fill: float) -> np.ndarray:
    x0, y0, x1, y1 = box
    pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=[fill] * 3)
    piece = padded[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    return cv2.resize(piece, (TILE, TILE), interpolation=cv2.INTER_AREA)


def row(folder: Path) -> np.ndarray:
    report = json.loads((folder / "report.json").read_text())
    photo = load_image(Path(report["input"])).rgb
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    overlay = cv2.imread(str(folder / "overlay.png"))
    if overlay.shape[:2] != bgr.shape[:2]:
        overlay = cv2.resize(overlay, (bgr.shape[1], bgr.shape[0]))
    scale = max(1.0, 3 * TILE / max(bgr.shape[:2]))  # small photos: render the mesh sharper than the photo
    grey, mask = grey_detail_render(folder, bgr.shape[:2], scale)
    box = crop_box(mask)
    photo_box = tuple(int(round(b / scale)) for b in box)
    grey8 = cv2.cvtColor((grey * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return np.concatenate([cut(bgr, photo_box, 0), cut(overlay, photo_box, 0), cut(grey8, box, 255),
                           displacement_tile(folder)], 1)


def main(out_dir: str, target: str) -> None:
    folders = sorted(p for p in Path(out_dir).iterdir() if (p / "mesh_detail.obj").exists())
    rows = [row(f) for f in folders]
    header = np.full((28, TILE * 4, 3), 255, np.uint8)
    for k, title in enumerate(["input", "overlay.png", "mesh_detail.obj (grey)", "displacement.png"]):
        cv2.putText(header, title, (k * TILE + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(target, np.concatenate([header, *rows], 0), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"{target}: {len(rows)} faces")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""How close our parser's masks come to the true parts, beside the landmark-drawn masks (docs/segmentation.md).

    python docs/experiments/parsertruth.py wild SEED N          # per-part IoU against the true mesh's parts
    python docs/experiments/parsertruth.py photos FOLDER OUT.jpg # both sources drawn over real photos

Wild: the benchmark's own render and detection of cases 0..N-1 (`fitter.bench.synthetic.prepare`), the matched
face's masks from `backend="landmarks"` and `backend="parser"`, each scored per part against
`fitter.bench.masks.oracle_masks` (the true mesh's parts, occluded pixels none) over the whole image.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fitter.bench.masks import oracle_masks  # noqa: E402
from fitter.bench.synthetic import match_face, prepare, true_landmarks  # noqa: E402
from fitter.io import LoadedImage, load_image  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.observe import observe_image, segment_faces  # noqa: E402
from fitter.observe.segmentation import PART_NAMES  # noqa: E402

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [255, 128, 0], [0, 128, 255], [255, 255, 0],
                    [255, 0, 255], [128, 0, 255], [200, 200, 200]], np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else float("nan")


def wild(seed: int, n: int) -> None:
    model = load_ict()
    rows = {"landmarks": [], "parser": []}
    for prepared in prepare(model, n, seed, 512, appearance="wild"):
        face = match_face(prepared, model)
        if face is None:
            continue
        h, w = prepared.rendered.image.shape[:2]
        truth = oracle_masks(model, prepared.rendered, true_landmarks(model, prepared))
        image = LoadedImage.from_array(prepared.rendered.image)
        for backend in rows:
            masks = segment_faces(image, [face], backend=backend, cache=False)[0]
            rows[backend].append([iou(masks.full_mask(p, (h, w), visible=True), truth.full_mask(p, (h, w)))
                                  for p in PART_NAMES])
    a, b = (np.array(rows[k]) for k in rows)
    print(f"{len(a)} faces; median IoU against the true parts: landmarks / parser / paired median, parser higher on")
    for k, part in enumerate(PART_NAMES):
        ok = ~np.isnan(a[:, k]) & ~np.isnan(b[:, k])
        d = b[ok, k] - a[ok, k]
        print(f"{part:10s} {np.median(a[ok, k]):.3f} / {np.median(b[ok, k]):.3f} / {np.median(d):+.3f}, "
              f"{(d > 0).sum()} of {ok.sum()}")
    ma, mb = np.nanmean(a, 1), np.nanmean(b, 1)
    print(f"{'mean part':10s} {np.median(ma):.3f} / {np.median(mb):.3f} / {np.median(mb - ma):+.3f}, "
          f"{(mb > ma).sum()} of {len(ma)}")


def photos(folder: Path, out: Path) -> None:
    tiles = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        image = load_image(path)
        obs = observe_image(image)
        for face in obs.faces:
            row = []
            for backend in ("landmarks", "parser"):
                masks = segment_faces(image, [face], backend=backend, cache=False)[0]
                lo, hi = face.landmarks[:, :2].min(0), face.landmarks[:, :2].max(0)
                pad = 0.2 * (hi - lo)
                x0, y0 = np.maximum(0, (lo - pad).astype(int))
                x1, y1 = np.minimum(image.rgb.shape[1::-1], (hi + pad).astype(int))
                labels = np.zeros(image.rgb.shape[:2], np.uint8)
                for k, part in enumerate(PART_NAMES):
                    labels[masks.full_mask(part, image.rgb.shape[:2], visible=True)] = k + 1
                crop = image.rgb[y0:y1, x0:x1]
                lab = labels[y0:y1, x0:x1]
                over = np.where(lab[..., None] > 0, 0.5 * crop + 0.5 * PALETTE[lab], crop).astype(np.uint8)
                row.append(cv2.resize(over, (160, 160), interpolation=cv2.INTER_AREA))
            tiles.append(np.concatenate(row, 1))
    faces = len(tiles)
    cols = min(4, int(np.ceil(np.sqrt(faces))))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.concatenate([np.concatenate(tiles[i:i + cols], 1) for i in range(0, len(tiles), cols)], 0)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"{out}: {faces} faces, landmark-drawn masks left, the parser's right")


if __name__ == "__main__":
    if sys.argv[1] == "wild":
        wild(int(sys.argv[2]), int(sys.argv[3]))
    else:
        photos(Path(sys.argv[2]), Path(sys.argv[3]))

"""Label every ICT vertex with a facial part (the model side of PRDL), from segmentations of renders.

Reproducible: ``python assets/build/build_part_labels.py`` (about 1 minute on 2 cores).

Method: render synthetic ICT faces in varied shapes, expressions and poses (fitter.synth.scenes); detect them
with MediaPipe; segment them with facefit's landmark segmentation (fitter.observe.segment_faces, backend
"landmarks"); every covered pixel votes, with its barycentric weights, for the part of its three triangle
corners. Each vertex takes the part with most votes ("none" if the pixels it covers lie outside every
part mask). Clean-up: vertices that received no vote take the label of their neighbours (mesh diffusion), a
few rounds of majority smoothing over mesh neighbours remove speckle, eye labels are kept to eyeball
vertices and the eyelid margin, and every other part to the face region.
Writes ``assets/ict_part_labels.npz`` (labels (V,) int8: 0 = none, k = PART_NAMES[k-1]) and the check image
``docs/images/part_labels.png``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse as sp
import torch

from fitter.synth.cases import render_case, sample_case
from fitter.synth.scenes import appearance
from fitter.io import LoadedImage
from fitter.model import load_ict
from fitter.observe import PART_NAMES, observe_image, segment_faces

COLOURS = np.array([[0.75, 0.75, 0.75], [0.1, 0.4, 1.0], [0.0, 0.8, 1.0], [0.6, 0.2, 0.8], [0.9, 0.3, 0.9],
                    [1.0, 0.8, 0.0], [1.0, 0.2, 0.2], [0.8, 0.1, 0.4], [0.4, 0.85, 0.4]], np.float32)


def varied_case(model, index: int, seed: int):
    case = sample_case(model, index, seed)
    rng = np.random.default_rng([seed, index, 2])
    from scipy.spatial.transform import Rotation

    case.rotation = Rotation.from_euler("YXZ", [rng.uniform(-30, 30), rng.uniform(-15, 15), 0], degrees=True).as_rotvec()
    case.expression = np.minimum(case.expression, 0.6)
    case.translation[2] *= 0.8
    return case


def adjacency(triangles: np.ndarray, n: int) -> sp.csr_matrix:
    i = np.concatenate([triangles[:, 0], triangles[:, 1], triangles[:, 2], triangles[:, 1], triangles[:, 2],
                        triangles[:, 0]])
    j = np.concatenate([triangles[:, 1], triangles[:, 2], triangles[:, 0], triangles[:, 0], triangles[:, 1],
                        triangles[:, 2]])
    a = sp.coo_matrix((np.ones(len(i), np.float32), (i, j)), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    return a


def main() -> None:
    here = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=60)
    parser.add_argument("--seed", type=int, default=4321)
    parser.add_argument("--out", type=Path, default=here / "assets" / "ict_part_labels.npz")
    parser.add_argument("--image", type=Path, default=here / "docs" / "images" / "part_labels.png")
    args = parser.parse_args()

    model = load_ict()
    topo = model.topology
    app = appearance(model)
    n = topo.num_vertices
    n_labels = len(PART_NAMES) + 1
    votes = np.zeros((n + 1, n_labels), np.float64)  # the extra row is the mouth cap's centre vertex
    used = 0
    for i in range(args.renders):
        case = varied_case(model, i, args.seed)
        rendered = render_case(model, case)
        image = LoadedImage.from_array(rendered.image)
        obs = observe_image(image, cache=False, search="none")
        if not obs.faces:
            continue
        masks = segment_faces(image, obs.faces[:1], backend="landmarks", cache=False)[0]
        x0, y0, x1, y1 = masks.region
        h, w = rendered.triangle_id.shape
        label = np.zeros((h, w), np.int64)
        sub = masks.labels[: max(0, min(h, y1) - y0), : max(0, min(w, x1) - x0)]
        label[y0 : y0 + sub.shape[0], x0 : x0 + sub.shape[1]] = sub
        covered = rendered.triangle_id >= 0
        tri = rendered.triangle_id[covered]
        corners = app.triangles[tri]  # (N, 3)
        bary = rendered.barycentrics[covered]
        lab = label[covered]
        for c in range(3):
            np.add.at(votes, (corners[:, c], lab), bary[:, c])
        used += 1
    votes = votes[:n]
    labels = votes.argmax(1)
    known = votes.sum(1) > 0.05

    adj = adjacency(topo.triangles, n)
    # fill unvoted vertices from their neighbours (diffusion of the vote histograms)
    hist = np.where(known[:, None], votes / votes.sum(1, keepdims=True).clip(1e-9), 0.0)
    for _ in range(200):
        if known.all():
            break
        spread = adj @ hist
        new = (~known) & (spread.sum(1) > 0)
        hist[new] = spread[new] / spread[new].sum(1, keepdims=True)
        known |= new
    labels = hist.argmax(1)
    # majority smoothing (speckle removal)
    for _ in range(3):
        onehot = np.eye(n_labels)[labels]
        labels = (adj @ onehot + onehot).argmax(1)
    face = topo.region("face") | topo.region("eyes")
    labels[~face] = 0
    eye_ids = [PART_NAMES.index("left_eye") + 1, PART_NAMES.index("right_eye") + 1]
    eye_ok = topo.region("eyes") | (adj @ topo.region("eyes").astype(np.float32) > 0)
    labels[np.isin(labels, eye_ids) & ~eye_ok] = PART_NAMES.index("skin") + 1
    labels = labels.astype(np.int8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, labels=labels, part_names=np.asarray(PART_NAMES),
                        method=np.asarray("votes of landmark segmentations of synthetic renders"),
                        renders=np.asarray(used))
    counts = {name: int((labels == k + 1).sum()) for k, name in enumerate(PART_NAMES)}
    counts["none"] = int((labels == 0).sum())
    print(json.dumps({"renders_used": used, "vertices_per_part": counts}, indent=1))
    check_image(model, labels, args.image)


def check_image(model, labels: np.ndarray, path: Path) -> None:
    """The neutral face seen from the front and from 40 degrees, coloured by part."""
    from fitter.camera import model_to_camera
    from fitter.render import interpolate, pixel_normals, rasterize, sh_directional, sh_shading

    size = 512
    tiles = []
    for yaw in (0.0, 0.7):
        v = model.mean[None]
        cam = model_to_camera(v, torch.tensor([[0.0, yaw, 0.0]]), torch.tensor([[0.0, 2.0, 75.0]]))
        K = torch.tensor([[[1400.0, 0, size / 2], [0, 1400.0, size / 2], [0, 0, 1]]])
        frags = rasterize(cam, model.topology.triangles, K, (size, size))
        colour = interpolate(frags, torch.as_tensor(COLOURS[labels.astype(np.int64)]))
        shade = sh_shading(pixel_normals(frags, cam), sh_directional((0.3, -0.4, -1.0), 0.6, 0.5)[None])
        img = torch.where(frags.mask[..., None], colour * shade, torch.ones(3))[0].clamp(0, 1).numpy()
        tiles.append((img * 255).astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(tiles, 1)[..., ::-1])


if __name__ == "__main__":
    main()

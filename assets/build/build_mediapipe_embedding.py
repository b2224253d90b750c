"""Derive where MediaPipe's 478 landmarks sit on the ICT surface (a barycentric embedding), from the detector.

Reproducible: ``python assets/build/build_mediapipe_embedding.py`` (about 2 minutes on 2 cores).

Method (render, detect, look up, aggregate):
1. Render synthetic ICT faces (varied identity, near-neutral expression, yaw within +-25 deg, pitch within
   +-15 deg) with facefit's own renderer (fitter.synth.scenes).
2. Run the real MediaPipe face landmarker on each render.
3. For every landmark, find the rendered surface under it: the triangle at that pixel and the
   perspective-correct barycentrics of the landmark inside it. Mesh landmarks (0-467) must land on skin
   (face/head triangles); iris landmarks (468-477) on the eyeballs; a hit on the wrong surface moves to the
   nearest pixel of the right one.
4. Map each hit to the neutral mean shape (same triangle and barycentrics), take the per-landmark median of
   those 3D points over all renders, and snap it to the closest point of the allowed surface.
5. Check on held-out renders: reprojection error of the embedded points (projected with the true pose) against
   the detections; and the similarity-aligned distance to MediaPipe's canonical face model.
Writes ``assets/ict_mediapipe_embedding.npz`` (triangles (478,), barycentrics (478, 3) into the ICT
topology's triangle list) and a check image ``docs/images/mediapipe_embedding.png``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from fitter.synth.cases import render_case, sample_case
from fitter.synth.scenes import appearance
from fitter.camera import model_to_camera, project
from fitter.io import LoadedImage
from fitter.metrics import similarity_align
from fitter.model import load_ict
from fitter.observe import observe_image

N_MESH = 468


def neutralish_case(model, index: int, seed: int, size: int = 512):
    case = sample_case(model, index, seed, size)
    rng = np.random.default_rng([seed, index, 1])
    from scipy.spatial.transform import Rotation

    yaw, pitch, roll = rng.uniform(-25, 25), rng.uniform(-15, 15), rng.uniform(-8, 8)
    case.rotation = Rotation.from_euler("YXZ", [yaw, pitch, roll], degrees=True).as_rotvec()
    case.identity = (rng.standard_normal(model.num_identity) * 0.8).astype(np.float32)
    case.expression = np.zeros(model.num_expression, np.float32)
    case.translation[2] *= 0.55 / 0.45  # faces a little larger than in the benchmark
    return case


def allowed_triangles(model) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over the rendering triangle list: skin triangles, eyeball triangles."""
    app = appearance(model)
    topo = model.topology
    v = topo.num_vertices
    tris = app.triangles
    real = (tris < v).all(1)
    skin_v = topo.region("face_and_head")
    eye_v = topo.region("eyes")
    safe = np.where(real[:, None], tris, 0)
    skin = real & skin_v[safe].all(1)
    eyes = real & eye_v[safe].all(1)
    return skin, eyes


def hits_for_render(model, case, rendered, landmarks: np.ndarray, skin: np.ndarray, eyes: np.ndarray,
                    search_px: int = 6):
    """(478,) rendering-triangle ids and (478, 3) barycentrics of the surface under each landmark (-1 if none)."""
    app = appearance(model)
    h, w = case.image_size
    tri_id = rendered.triangle_id
    verts = torch.as_tensor(rendered.camera_vertices)[None]
    K = torch.tensor([[[case.focal, 0, w / 2], [0, case.focal, h / 2], [0, 0, 1.0]]])
    screen = project(verts, K)[0].numpy()
    depth = rendered.camera_vertices[:, 2]
    out_t = np.full(len(landmarks), -1, np.int64)
    out_b = np.zeros((len(landmarks), 3), np.float32)
    yy, xx = np.mgrid[-search_px : search_px + 1, -search_px : search_px + 1]
    order = np.argsort((yy**2 + xx**2).ravel())
    offsets = np.stack([yy.ravel()[order], xx.ravel()[order]], 1)
    for k, (x, y) in enumerate(landmarks):
        ok_mask = eyes if k >= N_MESH else skin
        r0, c0 = int(np.floor(y)), int(np.floor(x))
        for dy, dx in offsets:
            r, c = r0 + dy, c0 + dx
            if 0 <= r < h and 0 <= c < w and tri_id[r, c] >= 0 and tri_id[r, c] < len(ok_mask) and ok_mask[tri_id[r, c]]:
                t = int(tri_id[r, c])
                corners = app.triangles[t]
                # the landmark itself if it lies on this pixel, else the neighbouring pixel's centre
                px = np.array([x, y]) if (dy, dx) == (0, 0) else np.array([c + 0.5, r + 0.5])
                b2 = _barycentric_2d(screen[corners], px)
                b = b2 / depth[corners]
                out_t[k], out_b[k] = t, np.clip(b / b.sum(), 0, 1)
                break
    return out_t, out_b


def _barycentric_2d(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    a, b, c = tri
    m = np.array([[b[0] - a[0], c[0] - a[0]], [b[1] - a[1], c[1] - a[1]]])
    try:
        l1, l2 = np.linalg.solve(m, p - a)
    except np.linalg.LinAlgError:
        return np.array([1 / 3, 1 / 3, 1 / 3])
    return np.clip(np.array([1 - l1 - l2, l1, l2]), 0, None)


def closest_point_on_triangles(p: np.ndarray, tri_pts: np.ndarray) -> tuple[int, np.ndarray]:
    """Index and barycentrics of the closest point to p on a set of triangles (T, 3, 3)."""
    a, b, c = tri_pts[:, 0], tri_pts[:, 1], tri_pts[:, 2]
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    nn = (n * n).sum(1).clip(1e-12)
    # project p onto each plane, then clamp the barycentrics by sampling candidates
    w = p - a
    gamma = (np.cross(ab, w) * n).sum(1) / nn
    beta = (np.cross(w, ac) * n).sum(1) / nn
    bary = np.stack([1 - beta - gamma, beta, gamma], 1).clip(0, None)
    bary /= bary.sum(1, keepdims=True)
    q = (bary[:, :, None] * tri_pts).sum(1)
    k = int(np.argmin(((q - p) ** 2).sum(1)))
    return k, bary[k]


def surface_samples(model, cases, skin: np.ndarray, eyes: np.ndarray) -> tuple[list[list[np.ndarray]], int]:
    """Render and detect each case; per landmark, the neutral mean shape's points under its detections (steps 1-4
    before aggregation), and how many renders had a face."""
    app = appearance(model)
    mean = model.mean.numpy()
    mean_ext = np.concatenate([mean, mean[app.mouth_loop].mean(0, keepdims=True)])
    samples = [[] for _ in range(478)]
    detected = 0
    for case in cases:
        rendered = render_case(model, case)
        obs = observe_image(LoadedImage.from_array(rendered.image), cache=False, search="none")
        if not obs.faces:
            continue
        detected += 1
        t, b = hits_for_render(model, case, rendered, obs.faces[0].landmarks, skin, eyes)
        for k in np.flatnonzero(t >= 0):
            samples[k].append((mean_ext[app.triangles[t[k]]] * b[k][:, None]).sum(0))
    return samples, detected


def model_surface_masks(model, skin: np.ndarray, eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rendering triangles' skin and eyeball masks (allowed_triangles) moved onto Topology.triangles (the
    rendering list leaves the corneas out)."""
    from fitter.synth.scenes import cornea_triangles

    n_model_tris = len(model.topology.triangles)
    kept = np.ones(n_model_tris, bool)
    kept[cornea_triangles(model)] = False
    render_to_model = np.flatnonzero(kept)  # rendering triangle i (< len) is model triangle render_to_model[i]
    skin_model = np.zeros(n_model_tris, bool)
    eyes_model = np.zeros(n_model_tris, bool)
    skin_model[render_to_model[np.flatnonzero(skin[: len(render_to_model)])]] = True
    eyes_model[render_to_model[np.flatnonzero(eyes[: len(render_to_model)])]] = True
    return skin_model, eyes_model


def snap_median(points: np.ndarray, allowed: np.ndarray, tri_pts: np.ndarray) -> tuple[int, np.ndarray]:
    """The median of a landmark's surface points snapped to the closest point of the allowed triangles (indices
    into Topology.triangles): its triangle and barycentrics."""
    j, b = closest_point_on_triangles(np.median(points, axis=0), tri_pts[allowed])
    return int(allowed[j]), b


def read_canonical(path: Path) -> np.ndarray:
    pts = [[float(x) for x in line.split()[1:4]] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.asarray(pts[:N_MESH])


def main() -> None:
    here = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=80)
    parser.add_argument("--holdout", type=int, default=20)
    parser.add_argument("--calibration", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=here / "assets" / "ict_mediapipe_embedding.npz")
    parser.add_argument("--image", type=Path, default=here / "docs" / "images" / "mediapipe_embedding.png")
    parser.add_argument("--canonical", type=Path,
                        default=here.parent / "shared" / "models" / "mediapipe" / "canonical_face_model.obj")
    args = parser.parse_args()

    model = load_ict()
    topo = model.topology
    skin, eyes = allowed_triangles(model)
    mean = model.mean.numpy()

    samples, detected = surface_samples(model, (neutralish_case(model, i, args.seed) for i in range(args.renders)),
                                        skin, eyes)
    print(f"detected {detected}/{args.renders} renders")

    # aggregate and snap to the allowed surface of the neutral mean shape (indices into topology.triangles)
    skin_model, eyes_model = model_surface_masks(model, skin, eyes)
    tri_pts = mean[topo.triangles]
    triangles = np.zeros(478, np.int64)
    bary = np.zeros((478, 3), np.float32)
    spread = np.zeros(478)
    for k in range(478):
        pts = np.asarray(samples[k])
        if len(pts) < 3:
            raise SystemExit(f"landmark {k}: only {len(pts)} hits; render more faces")
        spread[k] = np.median(np.linalg.norm(pts - np.median(pts, axis=0), axis=1))
        triangles[k], bary[k] = snap_median(pts, np.flatnonzero(eyes_model if k >= N_MESH else skin_model), tri_pts)
    reliability, calib_faces = calibrate(model, triangles, bary, args.calibration, args.seed + 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, triangles=triangles, barycentrics=bary, reliability=reliability,
                        method=np.asarray("render ICT, detect with MediaPipe, median of surface hits"),
                        renders=np.asarray(detected))

    # held-out check: reprojection of the embedding with the true pose vs detections
    emb_pts = (mean[topo.triangles[triangles]] * bary[:, :, None]).sum(1)
    errors, nmes = [], []
    example = None
    for i in range(args.holdout):
        case = neutralish_case(model, 10_000 + i, args.seed)
        rendered = render_case(model, case)
        obs = observe_image(LoadedImage.from_array(rendered.image), cache=False, search="none")
        if not obs.faces:
            continue
        v = model.vertices(torch.as_tensor(case.identity), torch.as_tensor(case.expression)[None])
        pts = (v[0].numpy()[topo.triangles[triangles]] * bary[:, :, None]).sum(1)
        cam = model_to_camera(torch.as_tensor(pts, dtype=torch.float32)[None],
                              torch.as_tensor(case.rotation, dtype=torch.float32)[None],
                              torch.as_tensor(case.translation, dtype=torch.float32)[None])
        h, w = case.image_size
        K = torch.tensor([[[case.focal, 0, w / 2], [0, case.focal, h / 2], [0, 0, 1.0]]])
        pix = project(cam, K)[0].numpy()
        det = obs.faces[0].landmarks
        err = np.linalg.norm(pix - det, axis=1)
        errors.append(err)
        nmes.append(np.sqrt((err**2).mean()) / obs.faces[0].inter_ocular)
        if example is None:
            example = (rendered.image.copy(), pix, det)
    errors = np.asarray(errors)
    stats = {
        "renders_used": detected,
        "holdout_faces": int(len(errors)),
        "holdout_rmse_px_median": float(np.median(np.sqrt((errors**2).mean(1)))),
        "holdout_nme_median": float(np.median(nmes)),
        "holdout_mesh_rmse_px_median": float(np.median(np.sqrt((errors[:, :N_MESH] ** 2).mean(1)))),
        "holdout_iris_rmse_px_median": float(np.median(np.sqrt((errors[:, N_MESH:] ** 2).mean(1)))),
        "calibration_faces": calib_faces,
        "reliability_min_median_max": [float(reliability.min()), float(np.median(reliability)),
                                       float(reliability.max())],
        "hit_spread_cm_median": float(np.median(spread)),
        "hit_spread_cm_p95": float(np.percentile(spread, 95)),
    }
    if args.canonical.exists():
        canonical = read_canonical(args.canonical)
        res = np.linalg.norm(similarity_align(canonical, emb_pts[:N_MESH]) - emb_pts[:N_MESH], axis=1)
        stats["canonical_similarity_residual_cm_median"] = float(np.median(res))
        stats["canonical_similarity_residual_cm_p95"] = float(np.percentile(res, 95))
    print(json.dumps(stats, indent=1))
    (args.out.with_suffix(".json")).write_text(json.dumps(stats, indent=1) + "\n")
    if example is not None:
        write_check_image(args.image, model, emb_pts, triangles, bary, example)


def calibrate(model, triangles: np.ndarray, bary: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, int]:
    """Relative reliability of each landmark: (median sigma / sigma_k)^2, clipped to [0.05, 4].

    sigma_k is the RMS distance between MediaPipe's detection and the embedded point's true projection, in
    units of the face size (sqrt of the landmarks' bounding-box area, as the landmark energy measures it),
    over renders drawn like the benchmark's (yaw +-60 deg, expressions up to extreme) but with another seed.
    """
    topo = model.topology
    residuals = []
    for i in range(count):
        case = sample_case(model, i, seed)
        rendered = render_case(model, case)
        obs = observe_image(LoadedImage.from_array(rendered.image), cache=False, search="none")
        if not obs.faces:
            continue
        pts = (rendered.camera_vertices[topo.triangles[triangles]] * bary[:, :, None]).sum(1)
        h, w = case.image_size
        K = torch.tensor([[[case.focal, 0, w / 2], [0, case.focal, h / 2], [0, 0, 1.0]]])
        pix = project(torch.as_tensor(pts, dtype=torch.float32)[None], K)[0].numpy()
        det = obs.faces[0].landmarks
        size = np.sqrt(np.prod(np.ptp(det, axis=0).clip(1)))
        residuals.append(np.linalg.norm(pix - det, axis=1) / size)
    sigma = np.sqrt((np.asarray(residuals) ** 2).mean(0))
    return np.clip((np.median(sigma) / sigma) ** 2, 0.05, 4.0).astype(np.float32), len(residuals)


def write_check_image(path: Path, model, emb_pts, triangles, bary, example) -> None:
    """Left: the neutral ICT face (frontal render) with the 478 embedded points. Right: a held-out render with
    MediaPipe's detections (green) and the embedding projected with the true pose (red)."""
    size = 512
    case = neutralish_case(model, 0, 0, size)
    case.identity[:] = 0
    case.rotation[:] = 0
    case.translation[:2] = 0
    case.translation[2] = case.focal * 24.0 / size
    left = render_case(model, case).image.copy()
    cam = model_to_camera(torch.as_tensor(emb_pts, dtype=torch.float32)[None], torch.zeros(1, 3),
                          torch.as_tensor(case.translation, dtype=torch.float32)[None])
    K = torch.tensor([[[case.focal, 0, size / 2], [0, case.focal, size / 2], [0, 0, 1.0]]])
    pix = project(cam, K)[0].numpy()
    for k, (x, y) in enumerate(pix):
        colour = (40, 90, 255) if k >= N_MESH else (255, 60, 40)
        cv2.circle(left, (int(x), int(y)), 2, colour, -1, cv2.LINE_AA)
    right, proj, det = example
    for (x, y), (u, v) in zip(proj, det):
        cv2.line(right, (int(x), int(y)), (int(u), int(v)), (255, 255, 0), 1, cv2.LINE_AA)
        cv2.circle(right, (int(u), int(v)), 1, (40, 220, 40), -1)
        cv2.circle(right, (int(x), int(y)), 1, (255, 40, 40), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate([left, right], 1)[..., ::-1])


if __name__ == "__main__":
    main()

"""An uncalibrated rig's cameras from the landmarks alone, without the face model (docs/video.md): every landmark
of every instant is a free 3D point seen by every camera that detected the face (structure from motion on 478
correspondences), bundle-adjusted from the *true* cameras and the true points. Where the cameras settle is the
best any landmark-only method can do with these detections: a free structure absorbs any error that one 3D
shape explains, so what is left is the detections' disagreement between views.

usage: bundleexp.py SEEDS        e.g. bundleexp.py 0,1,2,3,4   (the multi-view bench's scenes; ~5 s a scene)
Prints each scene's relative rotation errors (deg) to the first camera, where the adjustment settles."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mvexp import scene_data  # noqa: E402
from fitter.bench.video import rotation_angle  # noqa: E402

HUBER_PX = 2.0


def triangulate(cameras, seen: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """(N, 3) world points from ``(camera index, (N, 2) pixels)`` pairs, linear (DLT) point by point."""
    projections = {v: cameras[v].K @ np.hstack([cameras[v].R, cameras[v].t[:, None]]) for v, _ in seen}
    points = np.zeros((seen[0][1].shape[0], 3))
    for n in range(points.shape[0]):
        rows = [row for v, px in seen for row in (px[n, 0] * projections[v][2] - projections[v][0],
                                                  px[n, 1] * projections[v][2] - projections[v][1])]
        h = np.linalg.svd(np.array(rows))[2][-1]
        points[n] = h[:3] / h[3]
    return points


def adjust(seed: int) -> list[float]:
    data = scene_data(seed)
    cameras = [data["scene"].rig.cameras[n] for n in data["names"]]
    frames = [fr for fr in data["frames"] if fr["face"] is not None]
    instants = sorted({fr["i"] for fr in frames})
    points = {i: triangulate(cameras, [(fr["v"], fr["truth"]) for fr in frames if fr["i"] == i]) for i in instants}
    n, c = points[instants[0]].shape[0], len(cameras)
    start = np.array([np.concatenate([Rotation.from_matrix(cam.R).as_rotvec(), cam.t]) for cam in cameras])
    x0 = np.concatenate([start[1:].ravel()] + [points[i].ravel() for i in instants])
    n_cam = 6 * (c - 1)
    baseline = np.linalg.norm(cameras[1].centre - cameras[0].centre)  # the scale, which no image holds

    def unpack(x):
        poses = np.vstack([start[:1], x[:n_cam].reshape(c - 1, 6)])
        return poses, {i: x[n_cam + k * 3 * n: n_cam + (k + 1) * 3 * n].reshape(n, 3) for k, i in enumerate(instants)}

    def residuals(x):
        poses, pts = unpack(x)
        out = []
        for fr in frames:
            pose = poses[fr["v"]]
            cam = pts[fr["i"]] @ Rotation.from_rotvec(pose[:3]).as_matrix().T + pose[3:]
            uvw = cam @ cameras[fr["v"]].K.T
            out.append((uvw[:, :2] / uvw[:, 2:3] - fr["face"].landmarks).ravel())
        centre = -Rotation.from_rotvec(poses[1, :3]).as_matrix().T @ poses[1, 3:]
        return np.concatenate(out + [[10.0 * (np.linalg.norm(centre - cameras[0].centre) - baseline)]])

    sparsity = lil_matrix((2 * n * len(frames) + 1, x0.size), dtype=int)
    for k, fr in enumerate(frames):
        rows = slice(2 * n * k, 2 * n * (k + 1))
        if fr["v"] > 0:
            sparsity[rows, 6 * (fr["v"] - 1): 6 * fr["v"]] = 1
        block = n_cam + instants.index(fr["i"]) * 3 * n
        for p in range(n):
            sparsity[2 * n * k + 2 * p: 2 * n * k + 2 * p + 2, block + 3 * p: block + 3 * p + 3] = 1
    sparsity[-1, :6] = 1
    fit = least_squares(residuals, x0, jac_sparsity=sparsity, loss="huber", f_scale=HUBER_PX, x_scale="jac",
                        max_nfev=200)
    poses, _ = unpack(fit.x)
    first = Rotation.from_rotvec(poses[0, :3]).as_matrix()
    return [rotation_angle(cameras[v].R @ cameras[0].R.T, Rotation.from_rotvec(poses[v, :3]).as_matrix() @ first.T)
            for v in range(1, c)]


if __name__ == "__main__":
    for s in (int(a) for a in sys.argv[1].split(",")):
        print(s, "rotation errors (deg)", [round(e, 2) for e in adjust(s)], flush=True)

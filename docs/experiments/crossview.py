"""Does colour agreement between two views of a synthetic rig point at the true camera? (a probe, not a term)

For the widest camera pair of each multi-view scene (clean, 256 px, the bench's scenes 0-4): the true face
surface (world frame) is projected into both views and each vertex's colour read in both images; camera B is
then turned about the head by a yaw error d (-15..15 deg) and the disagreement (median absolute colour
difference over the vertices facing both cameras) recorded. With one world-fixed light (late 2026-12-03) the
minimum should sit at d = 0; with each view lit in its own camera frame (before) it sat 4-12 deg off on 4 of 5
scenes (docs/video.md).

    python docs/experiments/crossview.py      # about a minute on 2 cores
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from fitter.camera import model_to_camera
from fitter.model import load_ict
from fitter.render import vertex_normals
from fitter.synth.clips import render_multiview, sample_multiview

ERRORS_DEG = np.arange(-15, 16, 1.0)
FACING = 0.4  # cosine between a vertex normal and the direction to the camera, in both views


def sample(image: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Bilinear colours (N, 3) at (N, 2) pixel positions (pixel centres at +0.5)."""
    maps = pixels.astype(np.float32) - 0.5
    return cv2.remap(image.astype(np.float32), maps[:, None, 0], maps[:, None, 1], cv2.INTER_LINEAR)[:, 0]


def main() -> None:
    model = load_ict()
    face = model.topology.regions["face"]
    for seed in range(5):
        scene = sample_multiview(model, seed, size=256)
        renders = render_multiview(model, scene, appearance="clean", supersample=1)
        head = scene.head
        verts = model.vertices(torch.as_tensor(head.identity), torch.as_tensor(head.expression)[None])
        world = model_to_camera(verts, torch.as_tensor(head.rotation, dtype=torch.float32)[None],
                                torch.as_tensor(head.translation, dtype=torch.float32)[None])
        normals = vertex_normals(world, model.topology.triangles)[0].numpy().astype(np.float64)
        world = world[0].numpy().astype(np.float64)
        cams = list(scene.rig.cameras.values())
        yaw = [np.degrees(np.arctan2(-c.centre[0], -c.centre[2])) for c in cams]
        a, b = cams[int(np.argmin(yaw))], cams[int(np.argmax(yaw))]
        centre = world[face].mean(axis=0)

        def facing(cam, points, n) -> np.ndarray:
            to_cam = cam.centre[None] - points
            return np.sum(n * to_cam, axis=1) / np.linalg.norm(to_cam, axis=1) > FACING

        both = face & facing(a, world, normals) & facing(b, world, normals)
        colour_a = sample(renders[a.name].image, a.project(world[both]))
        costs = []
        for d in ERRORS_DEG:
            turn = Rotation.from_euler("y", d, degrees=True).as_matrix()
            moved = (world[both] - centre) @ turn.T + centre  # the head turned by d as camera B sees it
            colour_b = sample(renders[b.name].image, b.project(moved))
            costs.append(float(np.median(np.abs(colour_a - colour_b).sum(axis=1))))
        best = ERRORS_DEG[int(np.argmin(costs))]
        at = {d: costs[int(np.argmin(np.abs(ERRORS_DEG - d)))] for d in (-5.0, 0.0, 5.0)}
        print(f"scene {seed}: cameras {a.name} / {b.name} ({yaw[cams.index(b)] - yaw[cams.index(a)]:.0f} deg apart), "
              f"{int(both.sum())} vertices; disagreement least at {best:+.0f} deg "
              f"(at 0: {at[0.0]:.1f}, least {min(costs):.1f}, at -5 / +5: {at[-5.0]:.0f} / {at[5.0]:.0f})")


if __name__ == "__main__":
    main()

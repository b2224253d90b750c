"""Around an uncalibrated fast fit of a multi-view bench scene: where is the crossview cost least for its worst camera?

Fits the scene (clean, 256 px, 3 instants) with an uncalibrated rig, then turns the camera with the largest
rotation error about its x and y axes by -10..10 deg and prints the cross-view cost (relative to the fitted
state's) at each turn, and that camera's rotation error where the cost is least. A scene with an undetected
image is refused (the term's evidence must be the detected images).

    python docs/experiments/crossview_uncal.py 1      # scene (seed) 1, about a minute on 2 cores
"""
from __future__ import annotations

import sys

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from fitter.bench import video as bench
from fitter.energy.base import TermContext
from fitter.energy.crossview import build
from fitter.evidence import Evidence, FrameEvidence
from fitter.model import load_ict
from fitter.optimize.presets import load_preset
from fitter.optimize.subject import fit_sequence
from fitter.scene import Scene
from fitter.synth.clips import sample_multiview

TURNS_DEG = np.arange(-10, 11, 2.0)


def relative_error_deg(view_rotation: np.ndarray, first: np.ndarray, true_view: np.ndarray, true_first: np.ndarray) -> float:
    """Angle between the fitted and the true rotation of a camera relative to the first camera."""
    fitted = Rotation.from_rotvec(view_rotation).as_matrix() @ first.T
    return float(np.degrees(Rotation.from_matrix(fitted.T @ (true_view @ true_first.T)).magnitude()))


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    model, preset = load_ict(), load_preset("fast")
    scene = sample_multiview(model, seed, size=256)
    names = list(scene.rig.cameras)
    views = bench.render_scene_views(model, scene, seed, 3, "clean")
    if any(im.face is None for im in views):
        raise SystemExit(f"scene {seed} has undetected images: pick another")
    evidence = Evidence([FrameEvidence(im.face, (256, 256), im.rendered.image.astype(np.float32) / 255.0,
                                       view=im.view, instant=im.instant, sharpness=im.sharpness) for im in views])
    source = bench.frame_source([im.rendered.image for im in views], evidence, preset)
    fit = fit_sequence(model, evidence, preset, bench.uncalibrated(scene.rig), names, source=source)
    errors = bench.rig_errors(scene.rig, fit, names)["relative_rotation_error_deg"]
    print("rotation errors (deg)", np.round(errors, 2).tolist())
    k = int(np.argmax(errors)) + 1  # errors are listed for views 1, 2, ...
    state = fit.state.detached()
    term = build(TermContext(model, evidence, preset, [float(state.log_focal[0].exp())]))
    first = Rotation.from_rotvec(state.view_rotation[0].numpy()).as_matrix()
    truth = [scene.rig.cameras[n].R for n in names]

    def cost(s) -> float:
        with torch.no_grad():
            return float(term(Scene(model, s)).sum())

    base = cost(state)
    for axis in "xy":
        rows = []
        for d in TURNS_DEG:
            turned = state.detached()
            rotations = turned.view_rotation.clone()
            turn = Rotation.from_euler(axis, d, degrees=True) * Rotation.from_rotvec(rotations[k].numpy())
            rotations[k] = torch.as_tensor(turn.as_rotvec(), dtype=torch.float32)
            turned.view_rotation = rotations
            rows.append((d, cost(turned) / base, relative_error_deg(rotations[k].numpy(), first, truth[k], truth[0])))
        best = min(rows, key=lambda row: row[1])
        print(f"view {k}, turned about {axis}: cost least at {best[0]:+.0f} deg (rotation error there "
              f"{best[2]:.1f} deg, fitted {rows[len(rows) // 2][2]:.1f}); relative cost "
              + " ".join(f"{c:.2f}" for _, c, _ in rows))


if __name__ == "__main__":
    main()

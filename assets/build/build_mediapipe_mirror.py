"""Derive MediaPipe's left/right pairing of its 478 landmarks from the detector itself.

Reproducible: ``python assets/build/build_mediapipe_mirror.py`` (about 1 minute on 2 cores).

Why: averaging a face's landmarks with those the landmarker finds on the mirror image (mapped back) cancels
part of its error (docs/observations.md). Mapping back needs to know which point of the mirror image is which
point of the image: the mirror of the left eye's outer corner is detected as the *right* eye's outer corner.

Method: render clean ICT faces (seed 11, not a benchmark seed; yaw, pitch and expression as the benchmark
draws them), detect each image and its mirror image, map the mirror's points back (x -> W - x) and add the
size-normalised distance from every mirror point k to every image point j into one cost matrix; the
symmetrised assignment (Hungarian) is the pairing that best explains "point k of the mirror is point j of the
image". Being the optimum of a symmetric cost it is its own inverse (checked), and points paired with
themselves lie on the midline. Also reported: the mean horizontal offset between the image's points and the
mirror's mapped back (a half-pixel convention error would show here).

Writes ``assets/mediapipe_mirror.npz``: ``permutation`` (478,) int16, ``renders`` (faces used), ``seed``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from fitter.io import LoadedImage
from fitter.model import load_ict
from fitter.observe import observe_image
from fitter.synth.cases import render_case, sample_case

POINTS = 478
OUT = Path(__file__).resolve().parents[1] / "mediapipe_mirror.npz"


def detect(image: np.ndarray, label: str) -> np.ndarray | None:
    """The largest face's landmarks, with mirror averaging off (this script is what makes it possible)."""
    obs = observe_image(LoadedImage.from_array(np.ascontiguousarray(image), path=label), largest=True,
                        cache=False, mirror=False)
    return obs.faces[0].landmarks.astype(np.float64) if obs.faces else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=24)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    model = load_ict()
    cost = np.zeros((POINTS, POINTS))
    pairs, used = [], 0
    for i in range(args.renders):
        image = render_case(model, sample_case(model, i, args.seed, 512, appearance="clean")).image
        a = detect(image, f"<render {i}>")
        b = detect(image[:, ::-1], f"<render {i}, mirrored>")
        if a is None or b is None:
            continue
        back = b.copy()
        back[:, 0] = image.shape[1] - back[:, 0]
        size = np.sqrt(np.prod(np.ptp(a, axis=0)))
        cost += np.linalg.norm(back[:, None] - a[None], axis=2) / size
        pairs.append((a, back))
        used += 1
    _, permutation = linear_sum_assignment(cost + cost.T)
    involution = bool(np.all(permutation[permutation] == np.arange(POINTS)))
    midline = int(np.sum(permutation == np.arange(POINTS)))
    dx = [float(np.mean(back[permutation, 0] - a[:, 0])) for a, back in pairs]
    print(f"{used} of {args.renders} renders detected; involution: {involution}; {midline} midline points; "
          f"mean x offset image -> mirror mapped back {np.mean(dx):+.3f} px (median {np.median(dx):+.3f})")
    if not involution:
        raise SystemExit("the pairing is not its own inverse: use more renders")
    np.savez(args.output, permutation=permutation.astype(np.int16), renders=np.int64(used),
             seed=np.int64(args.seed))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

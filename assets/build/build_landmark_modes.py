"""Measure MediaPipe's shared landmark error modes on the ICT surface, from wild renders.

Reproducible: ``python assets/build/build_landmark_modes.py`` (about 13 minutes on 2 cores for 400 renders).

Why: the detector's errors on one face move together (a contour sliding as a whole, eyes read wider together);
the landmark term can whiten its residual against the first few modes instead of bending the face to explain
them (``fitter/energy/landmark_modes.py``, docs/fitting.md "The detector's errors move together").

Method: render wild benchmark-style cases (``fitter.synth``, appearance "wild": occluders, blur, JPEG, small
faces) of a seed the benchmark never uses (default 100; the benchmark uses 0, held-out checks 2 and 5), detect
them with the pipeline's own observation (mirror averaging as the fitter sees it), and take each face's error:
detection minus the true projection of the embedded landmark points (``assets/ict_mediapipe_embedding.npz``), in
the face's frame (x along the detected eye axis 33 -> 263, lengths in face sizes, the square root of the
detections' box area). Faces whose RMS error exceeds 3x the median are another face or a failed detection, not a
sample of the detector's noise, and are left out. Each face is also used mirrored (x negated, points swapped by
``assets/mediapipe_mirror.npz``), so the modes do not prefer one side. The modes are the eigenvectors of the
errors' second moment (the mean error is part of what is suppressed).

The modes are errors against the embedding: rebuild them whenever ``build_mediapipe_embedding.py`` is rerun.

Writes ``assets/ict_mediapipe_error_modes.npz``: ``basis`` (956, 64) float32 (x, y of each point, face frame),
``variances`` (64,), ``total_variance``, ``renders``, ``faces``, ``seed``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fitter.bench.synthetic import match_face, prepare, true_landmarks  # noqa: E402
from fitter.energy.landmarks import LandmarkTargets  # noqa: E402
from fitter.energy.landmark_modes import face_rotation  # noqa: E402
from fitter.model import load_ict  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "ict_mediapipe_error_modes.npz"
MIRROR = Path(__file__).resolve().parents[1] / "mediapipe_mirror.npz"
KEEP = 64


def face_frame_error(detected: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(478, 2) error of one face in its own frame, in face sizes."""
    pts = torch.as_tensor(detected, dtype=torch.float64)[None]
    rot = face_rotation(pts)[0].numpy()
    size = float(LandmarkTargets(pts, torch.ones(pts.shape[:2], dtype=torch.float64), "mediapipe478").face_size()[0])
    return (detected - truth) @ rot.T / size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=400)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--samples", type=Path, help="also save every face's error here (for analysis)")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    model = load_ict()
    errors, yaws = [], []
    for start in range(0, args.renders, 50):  # in chunks: the renders are not all held in memory
        cases = prepare(model, min(50, args.renders - start), args.seed, 512, "wild", first=start)
        for prepared in cases:
            face = match_face(prepared, model)
            if face is not None:
                detected = np.asarray(face.landmarks, np.float64)
                errors.append(face_frame_error(detected, true_landmarks(model, prepared)))
                yaws.append(float(prepared.case.rotation[1]))
        print(f"{start + len(cases)} renders, {len(errors)} faces", flush=True)
    e = np.array(errors)
    rms = np.sqrt((e ** 2).sum(-1).mean(-1))
    keep = rms < 3 * np.median(rms)
    perm = np.load(MIRROR)["permutation"].astype(np.int64)
    mirrored = e[keep][:, perm] * np.array([-1.0, 1.0])
    r = np.concatenate([e[keep], mirrored]).reshape(2 * keep.sum(), -1)
    lam, u = np.linalg.eigh(r.T @ r / len(r))
    lam, u = lam[::-1], u[:, ::-1]
    share = np.cumsum(lam) / lam.sum()
    print(f"{keep.sum()} faces ({(~keep).sum()} left out) of {args.renders} renders, each also mirrored; "
          "variance share of the first 1/3/5/10/20 modes: "
          + " / ".join(f"{share[k - 1]:.2f}" for k in (1, 3, 5, 10, 20)))
    if args.samples:
        np.savez(args.samples, errors=e, keep=keep, yaw_rotvec=np.array(yaws))
    np.savez(args.output, basis=u[:, :KEEP].astype(np.float32), variances=lam[:KEEP], total_variance=lam.sum(),
             renders=np.int64(args.renders), faces=np.int64(keep.sum()), seed=np.int64(args.seed))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

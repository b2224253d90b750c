"""Is MediaPipe's landmark error a function of the true face, and does predicting it help the fit? (session 43)

The detector's error on a wild render (detection minus the true projection of the embedded points), expressed in
the TRUE face's own frame (x along the true eye axis 33 -> 263, origin at the points' centroid, lengths in face
sizes), is a third predictable from the true configuration in that frame by a linear map (cross-validated): the
regressor pulls faces toward its own mean shape and reads turned faces with a pose-dependent bias. Instead of
bending identity to explain that error (or whitening it away, `lmmodesexp.py`, which on real photos and the GRID
clips removed identity with it), the landmark term can compare the detections with the detection the model's
projection WOULD give: p + E(p), E(p) = e_mean + G W^T (frame(p) - t_mean), W the first R principal directions of the
true configurations, G a ridge regression of the errors on them (both from renders of seeds the benchmark never
uses, each also mirrored).

usage: detresponse.py sample SEED N OUT.npz        errors and true points of N wild renders (truth frame)
       detresponse.py build R OUT.npz IN.npz ...   the response map (R directions) from samples
       detresponse.py fit SEED N MAP.npz|none     the ablation row $ROW (default `landmarks`) on wild SEED with the map
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fitter.bench.synthetic import ABLATION_ROWS, match_face, prepare, row_preset, run_config, true_landmarks  # noqa: E402
from fitter.energy import landmarks as lmterm  # noqa: E402
from fitter.energy.landmark_modes import face_rotation  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.optimize.schedule import NonFiniteFit  # noqa: E402

MIRROR = Path(__file__).resolve().parents[2] / "assets" / "mediapipe_mirror.npz"


def frame(points: torch.Tensor):
    """Per frame: rotation (F, 2, 2) into the face frame, centroid (F, 1, 2), size (F, 1, 1); differentiable."""
    span = points.amax(1) - points.amin(1)
    return face_rotation(points), points.mean(1, keepdim=True), span.prod(-1).sqrt()[:, None, None]


def to_frame(points, rot, centre, size):
    return (points - centre) @ rot.transpose(1, 2) / size


def sample(seed: int, n: int, out: str) -> None:
    model = load_ict()
    errors, truths = [], []
    for start in range(0, n, 50):
        for prep in prepare(model, min(50, n - start), seed, 512, "wild", first=start):
            face = match_face(prep, model)
            if face is None:
                continue
            det = torch.as_tensor(np.asarray(face.landmarks, np.float64))[None]
            tru = torch.as_tensor(true_landmarks(model, prep), dtype=torch.float64)[None]
            rot, centre, size = frame(tru)
            truths.append(to_frame(tru, rot, centre, size)[0].numpy())
            errors.append(((det - tru) @ rot.transpose(1, 2) / size)[0].numpy())
        print(start + 50, len(errors), flush=True)
    np.savez(out, e=np.array(errors), t=np.array(truths))


def build(r: int, out: str, inputs: list[str], ridge: float = 1e-3) -> None:
    e = np.concatenate([np.load(p)["e"] for p in inputs])
    t = np.concatenate([np.load(p)["t"] for p in inputs])
    rms = np.sqrt((e ** 2).sum(-1).mean(-1))
    keep = rms < 3 * np.median(rms)
    e, t = e[keep], t[keep]
    perm = np.load(MIRROR)["permutation"].astype(np.int64)
    flip = np.array([-1.0, 1.0])
    e = np.concatenate([e, e[:, perm] * flip]).reshape(2 * len(e), -1)
    t = np.concatenate([t, t[:, perm] * flip]).reshape(2 * len(t), -1)
    t_mean, e_mean = t.mean(0), e.mean(0)
    _, _, vt = np.linalg.svd(t - t_mean, full_matrices=False)
    w = vt[:r].T
    z = (t - t_mean) @ w
    g = np.linalg.solve(z.T @ z + ridge * len(z) * np.eye(r), z.T @ (e - e_mean)).T
    pred = e_mean + z @ g.T
    print(f"{len(e)} samples (mirrored, {(~keep).sum()} left out): in-sample share explained "
          f"{1 - ((e - pred) ** 2).sum() / (e ** 2).sum():.3f}")
    np.savez(out, w=w, g=g, t_mean=t_mean, e_mean=e_mean)


def patched_residuals(path: str):
    data = {k: torch.as_tensor(v) for k, v in np.load(path).items()}
    shipped = lmterm.LandmarkTerm.residuals

    def residuals(self, scene):
        res, weights = shipped(self, scene)
        pix = res + self.targets.points
        rot, centre, size = frame(pix)
        flat = to_frame(pix, rot, centre, size).reshape(pix.shape[0], -1)
        dt = flat.dtype
        z = (flat - data["t_mean"].to(dt)) @ data["w"].to(dt)
        err = (data["e_mean"].to(dt) + z @ data["g"].to(dt).T).reshape(pix.shape)
        predicted = pix + err @ rot * size  # back into the image: the detection the model's face would give
        return predicted - self.targets.points, weights
    return residuals


def fit(seed: int, n: int, path: str) -> None:
    model = load_ict()
    cases = prepare(model, n, seed, 512, "wild")
    spec = next(r for r in ABLATION_ROWS if r["name"] == os.environ.get("ROW", "landmarks"))
    if path != "none":
        lmterm.LandmarkTerm.residuals = patched_residuals(path)
    rows = []
    for case in cases:
        try:
            rows += run_config(model, [case], row_preset(spec), masks=spec["masks"])
        except NonFiniteFit as exc:
            print(f"case {case.case.index} failed: {exc}", flush=True)
            rows.append({"detected": False, "index": case.case.index})
    err = [r["procrustes_error_mm"] if r.get("detected") else None for r in rows]
    e = np.array([v for v in err if v is not None])
    print(f"{spec['name']} {path}: {np.median(e):.3f} ({e.mean():.3f}) mm, {len(e)} faces; true 2D "
          f"{np.median([r['landmark_true_rmse_px'] for r in rows if r.get('detected')]):.3f} px")
    print(json.dumps(err))


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "build":
        build(int(sys.argv[2]), sys.argv[3], sys.argv[4:])
    else:
        fit(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])

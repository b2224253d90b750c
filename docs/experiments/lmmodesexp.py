"""Does MediaPipe's landmark error move in a few shared modes that the landmark term should not fit? (session 42)

The landmark term sums a robust loss over the 478 points as if their errors were independent, yet on the wild
renders it prefers the fit's own identity to the true one on 45 of 47 faces (docs/benchmark.md): the detector's
errors are correlated (a contour that slides as a whole, eyes read too wide together), and the identity bends to
explain them. This probe measures the detector's error modes on renders the benchmark does not use, then fits
the landmark stages with the residual whitened against the first K modes (noise covariance s^2 I + U diag(lam) U^T:
r' = r - U diag(c) U^T r, c = 1 - sqrt(s^2 / (s^2 + lam)), so |r'|^2 / s^2 is the Mahalanobis distance), in the
face's own frame (eye axis, face size), points the detector gives weight 0 left out.

usage: lmmodesexp.py build SEED N            the modes from wild renders of SEED (saved next to this script's
                                             output folder, $FACEFIT_EXP or /tmp)
       lmmodesexp.py fit SEED N K1,K2,...    the `landmarks` ablation row (rigid + landmark stages) on wild SEED
                                             with each K (0: the shipped term), Procrustes median / mean, paired
       env LMMODES_ROW=fast|default          another ablation row (every stage's landmark term whitened)
       env LMMODES_S2=proper                 s^2 = the whole variance outside the K modes per coordinate (stronger)
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
from fitter.energy.base import pseudo_huber  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.optimize.schedule import NonFiniteFit  # noqa: E402

MODEL = load_ict()
OUT = Path(os.environ.get("FACEFIT_EXP", "/tmp")) / "lmmodes.npz"
EYES = (33, 263)  # MediaPipe's outer eye corners


def frame_of(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotation (2, 2) image -> face frame (x along the eye axis) and the face size (sqrt of the box area)."""
    d = points[EYES[1]] - points[EYES[0]]
    c, s = d / np.linalg.norm(d)
    size = float(np.sqrt(np.prod(np.maximum(points.max(0) - points.min(0), 1.0))))
    return np.array([[c, s], [-s, c]]), size


def build(seed: int, n: int) -> None:
    rows = []
    for prepared in prepare(MODEL, n, seed, 512, "wild"):
        face = match_face(prepared, MODEL)
        if face is None:
            continue
        det = np.asarray(face.landmarks, np.float64)
        rot, size = frame_of(det)
        rows.append(((det - true_landmarks(MODEL, prepared)) @ rot.T / size).ravel())
    r = np.array(rows)
    rms = np.sqrt((r ** 2).mean(1))
    keep = rms < 3 * np.median(rms)  # a detection of something else is no sample of the detector's error
    r = r[keep]
    lam, u = np.linalg.eigh(r.T @ r / len(r))
    lam, u = lam[::-1], u[:, ::-1]
    share = np.cumsum(lam) / lam.sum()
    print(f"{len(r)} faces ({(~keep).sum()} left out); variance share of the first 1/3/5/10/20/40 modes: "
          + " / ".join(f"{share[k - 1]:.2f}" for k in (1, 3, 5, 10, 20, 40)))
    np.savez(OUT, u=u[:, :64].astype(np.float32), lam=lam[:64], trace=lam.sum())
    print("saved", OUT)


def whitened_call(k: int):
    data = np.load(OUT)
    u = torch.as_tensor(data["u"][:, :k])
    lam = torch.as_tensor(data["lam"][:k])
    if os.environ.get("LMMODES_S2") == "proper":  # the whole residual variance outside the modes, per coordinate
        s2 = float((data["trace"] - data["lam"][:k].sum()) / (data["u"].shape[0] - k))
    else:  # the mean of the next modes' variances (<= 64): a weaker suppression
        s2 = float(data["lam"][k:].mean())
    c = 1 - torch.sqrt(s2 / (s2 + lam))

    def call(self, scene):
        res, w = self.residuals(scene)
        pts = self.targets.points.detach()
        out = []
        for f in range(res.shape[0]):
            rot, size = frame_of(pts[f].cpu().numpy().astype(np.float64))
            rot = torch.as_tensor(rot, dtype=res.dtype)
            r = (res[f] * (w[f] > 0)[:, None]) @ rot.T / size  # face frame, face sizes
            flat = r.reshape(-1)
            flat = flat - u.to(res.dtype) @ (c.to(res.dtype) * (u.to(res.dtype).T @ flat))
            out.append(flat.reshape(-1, 2) * size @ rot)
        white = torch.stack(out)
        x = white.norm(dim=-1) / self.scale[:, None]
        return (w * pseudo_huber(x, self.delta)).sum(-1)
    return call


def fit(seed: int, n: int, ks: list[int]) -> None:
    cases = prepare(MODEL, n, seed, 512, "wild")
    spec = next(r for r in ABLATION_ROWS if r["name"] == os.environ.get("LMMODES_ROW", "landmarks"))
    shipped = lmterm.LandmarkTerm.__call__
    errors = {}
    for k in ks:
        lmterm.LandmarkTerm.__call__ = whitened_call(k) if k else shipped
        rows = []
        for case in cases:  # one at a time: a fit that ends non-finite is that face's failure, not the run's
            try:
                rows += run_config(MODEL, [case], row_preset(spec), masks=spec["masks"])
            except NonFiniteFit as exc:
                print(f"K={k}: case {case.case.index} failed: {exc}", flush=True)
                rows.append({"detected": False})
        errors[k] = np.array([r["procrustes_error_mm"] if r.get("detected") else np.nan for r in rows])
        e = errors[k][np.isfinite(errors[k])]
        nme = np.nanmedian([r.get("landmark_nme") or np.nan for r in rows])
        print(f"K={k:3d}: {np.median(e):.3f} ({e.mean():.3f}) mm, NME {nme:.4f}, {len(e)} faces", flush=True)
    lmterm.LandmarkTerm.__call__ = shipped
    base = errors[ks[0]]
    for k in ks[1:]:
        d = errors[k] - base
        d = d[np.isfinite(d)]
        print(f"K={k} vs K={ks[0]}: paired median {np.median(d):+.3f}, mean {d.mean():+.3f}, better on "
              f"{(d < 0).sum()} of {len(d)}")
    print(json.dumps({str(k): [None if not np.isfinite(v) else round(float(v), 4) for v in e] for k, e in errors.items()}))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(int(sys.argv[2]), int(sys.argv[3]))
    else:
        fit(int(sys.argv[2]), int(sys.argv[3]), [int(v) for v in sys.argv[4].split(",")])

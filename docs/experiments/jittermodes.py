"""MediaPipe's jitter modes (session 43): detections of the same wild render under small similarity warps (+-3 deg,
+-4 % scale, +-2 px) and JPEG (quality 70-95), mapped back; their spread about the face's own mean detection holds no
identity (the face is the same), only the detector's noise. Saves modes in the format of
assets/ict_mediapipe_error_modes.npz (to try them, copy the output over that asset, run with
`[landmarks] error_modes = K`, and restore it: `git checkout assets/ict_mediapipe_error_modes.npz`).

usage: jittermodes.py SEED RENDERS COPIES OUT.npz      (session 43: 100 100 6, ~4 minutes)
"""
import sys
from pathlib import Path
import cv2
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fitter.io import LoadedImage
from fitter.observe import observe_image
from fitter.synth.cases import render_case, sample_case
from fitter.bench.synthetic import true_landmarks, PreparedCase
from fitter.energy.landmark_modes import face_rotation
from fitter.energy.landmarks import LandmarkTargets
from fitter.model import load_ict

seed, n, copies, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = load_ict()
rng = np.random.default_rng(7)
devs = []
for i in range(n):
    case = sample_case(model, i, seed, 512, appearance="wild")
    rendered = render_case(model, case)
    img = rendered.image
    truth = true_landmarks(model, PreparedCase(case, rendered, None, 0.0, 0.0))
    tc = truth.mean(0)
    dets = []
    for m in range(copies):
        ang, sc = rng.uniform(-3, 3), rng.uniform(0.96, 1.04)
        a = cv2.getRotationMatrix2D((256.0, 256.0), ang, sc)
        a[:, 2] += rng.uniform(-2, 2, 2)
        warped = cv2.warpAffine(img, a, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        ok, buf = cv2.imencode(".jpg", warped[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
        warped = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        obs = observe_image(LoadedImage.from_array(warped, path=f"<jitter {i}:{m}>"), cache=False)
        if not obs.faces:
            continue
        ai = cv2.invertAffineTransform(a)
        best = None
        for f in obs.faces:
            p = np.asarray(f.landmarks, np.float64) @ ai[:, :2].T + ai[:, 2]
            d = np.linalg.norm(p.mean(0) - tc)
            if best is None or d < best[0]:
                best = (d, p)
        if best[0] < 30:
            dets.append(best[1])
    if len(dets) < 3:
        continue
    dets = np.array(dets)
    mean = dets.mean(0)
    pts = torch.as_tensor(mean)[None]
    rot = face_rotation(pts)[0].numpy()
    size = float(LandmarkTargets(pts, torch.ones(1, 478, dtype=torch.float64), "mediapipe478").face_size()[0])
    for d in dets:
        devs.append((d - mean) @ rot.T / size * np.sqrt(len(dets) / (len(dets) - 1)))
    print(i, len(dets), flush=True)
e = np.array(devs)
perm = np.load(Path(__file__).resolve().parents[2] / "assets" / "mediapipe_mirror.npz")["permutation"].astype(np.int64)
r = np.concatenate([e, e[:, perm] * np.array([-1.0, 1.0])]).reshape(2 * len(e), -1)
lam, u = np.linalg.eigh(r.T @ r / len(r))
lam, u = lam[::-1], u[:, ::-1]
share = np.cumsum(lam) / lam.sum()
print(len(e), "deviations; share 1/3/5/10/20:", [round(float(share[k - 1]), 3) for k in (1, 3, 5, 10, 20)],
      "rms", float(np.sqrt((e ** 2).mean())))
np.savez(out, basis=u[:, :64].astype(np.float32), variances=lam[:64], total_variance=lam.sum(),
         renders=np.int64(n), faces=np.int64(len(e)), seed=np.int64(seed))

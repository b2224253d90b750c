"""Tilted faces: MediaPipe's landmark error against the truth as the image is turned in plane (a head tilted in a
photo), read as it is (`level_above_deg = 0`) and read again level (the shipped setting). Wild renders 0-24 of
seeds 0 and 2 (their own roll within +-12 deg) turned by 0, 20, 30 and 45 deg about the image centre (reflected
border), largest face, landmarks turned back; mean point error over the true eye-corner distance.
usage: tiltexp.py"""
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fitter.io import LoadedImage  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.observe import observe_image  # noqa: E402
from wildtruth import wild_truths  # noqa: E402

ANGLES = [0, 20, 30, 45]
model = load_ict()
errors = {"as read": [], "level": []}
for seed, i, rendered, truth, eyes in wild_truths(model):
    h, w = rendered.image.shape[:2]
    rows = {k: [] for k in errors}
    for angle in ANGLES:
        turn = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, 1.0)  # about the centre (corner convention)
        image = np.ascontiguousarray(cv2.warpAffine(rendered.image, turn, (w, h), flags=cv2.INTER_LINEAR,
                                                    borderMode=cv2.BORDER_REFLECT101))
        for name, limit in (("as read", 0.0), ("level", None)):
            kw = {} if limit is None else {"level_above_deg": limit}
            obs = observe_image(LoadedImage.from_array(image), cache=False, largest=True, **kw)
            if not obs.faces:
                rows[name].append(np.nan)
                continue
            centre = np.array([w / 2, h / 2])
            back = (obs.faces[0].landmarks.astype(np.float64) - centre) @ np.linalg.inv(turn[:, :2]).T + centre
            rows[name].append(float(np.mean(np.linalg.norm(back - truth, axis=1)) / eyes))
    for name in errors:
        errors[name].append(rows[name])
    print(seed, i, {k: np.round(v, 4).tolist() for k, v in rows.items()}, flush=True)
base, level = np.array(errors["as read"]), np.array(errors["level"])
ok = np.isfinite(base).all(1) & np.isfinite(level).all(1)
for j, angle in enumerate(ANGLES):
    b, n = base[ok, j], level[ok, j]
    print(f"{angle:3d} deg: median {np.median(b):.4f} -> {np.median(n):.4f}; better {(n < b - 1e-6).sum()}, "
          f"worse {(n > b + 1e-6).sum()} of {ok.sum()}")

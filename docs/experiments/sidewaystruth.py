"""MediaPipe's reading of a face on its side, against the truth: wild renders 0-24 of seeds 0 and 2 observed
upright and turned a quarter either way (largest face), the landmarks mapped back upright, mean point error over
the true eye-corner distance against the true embedded points. `off`: `rotated = false` (MediaPipe as it is);
default: the way-up check on (faces of an image on its side are read in the view that has them upright).
usage: sidewaystruth.py [off]"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fitter.io import LoadedImage  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.observe import observe_image  # noqa: E402
from fitter.observe.mediapipe_backend import turned_back  # noqa: E402
from wildtruth import wild_truths  # noqa: E402

rotated = "off" not in sys.argv[1:]
model = load_ict()
rows = []
for seed, i, rendered, truth, eyes in wild_truths(model):
    h, w = rendered.image.shape[:2]
    row = []
    for k in (0, 1, 3):  # upright, a quarter counter-clockwise, a quarter clockwise
        copy = np.ascontiguousarray(np.rot90(rendered.image, k))
        obs = observe_image(LoadedImage.from_array(copy), cache=False, largest=True, rotated=rotated)
        if not obs.faces:
            row.append(np.nan)
            continue
        face = turned_back(obs.faces[0], w, h, k) if k else obs.faces[0]  # the copy's pixels back to the render's
        row.append(float(np.mean(np.linalg.norm(face.landmarks - truth, axis=1)) / eyes))
    rows.append(row)
    print(seed, i, np.round(row, 4), flush=True)
rows = np.array(rows)
for j, name in ((0, "upright"), (1, "counter-clockwise"), (2, "clockwise")):
    found = np.isfinite(rows[:, j])
    print(f"{name}: found {found.sum()} of {len(rows)}, median error {np.median(rows[found, j]):.4f}, "
          f"above 0.2 (laid out the wrong way): {(rows[found, j] > 0.2).sum()}")

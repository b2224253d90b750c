"""Images stored turned (EXIF orientation lost): is the face found, and which way is it reported turned?

The 9 photos of shared/data/images and wild renders 0-24 of seeds 0 and 2 (512 px), each observed as it is and
turned 1, 2, 3 quarters counter-clockwise (np.rot90's k). Per copy: faces found and the quarter turns the
observation reports (fitter.observe.quarter_turns); a report is right when it brings the copy back upright
((turns + k) % 4 == 0). With `off`, `rotated = false` (MediaPipe as it is: how many turned copies show no face).
usage: sidewaysexp.py [off]"""
import glob
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fitter.io import LoadedImage, load_image  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.observe import observe_image, quarter_turns  # noqa: E402
from fitter.synth.cases import render_case, sample_case  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "images"
rotated = "off" not in sys.argv[1:]
images = [(p.name, load_image(p).rgb) for p in sorted(SHARED.glob("*"))]
model = load_ict()
for seed in (0, 2):
    for i in range(25):
        images.append((f"wild{seed}:{i}", render_case(model, sample_case(model, i, seed, 512, appearance="wild")).image))
stats = {k: [0, 0, 0] for k in range(4)}  # per k: copies with a face, reported turned right, turned wrong
for name, rgb in images:
    row = []
    for k in range(4):
        obs = observe_image(LoadedImage.from_array(np.ascontiguousarray(np.rot90(rgb, k))), cache=False,
                            rotated=rotated)
        q = quarter_turns(obs.warnings)
        row.append((len(obs.faces), q))
        stats[k][0] += bool(obs.faces)
        if q:
            stats[k][1 if (q + k) % 4 == 0 else 2] += 1
    print(name, row, flush=True)
print("per k (copies with a face, turned right, turned wrong):", stats)

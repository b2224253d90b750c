"""The face-oval landmarks left out of the photometric stages only: the detector's outline is what the landmark term
holds the fit to hardest against the truth (docs/benchmark.md: the landmarks prefer the fit's identity on 45 of 47
faces), while the background cost and the shading still see the outline. From the same post-PRDL states (wild seed
0, 47 faces, guarded; truthenergyexp.py's); each face's MediaPipe oval points get their weight times ``SCALE`` (at least 1e-3: the fitting crop is drawn
around the points of positive weight, and it must not change).
usage: ovalphotexp.py SCALE [SCALE ...]     (about 9 minutes a value on 2 cores)"""
import copy, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import np
from truthenergyexp import PRESET, paired_variant, states
from fitter.observe.seg_landmarks import mediapipe_topology

OVAL = np.array(sorted(set(mediapipe_topology()['oval'])))
recs = states()[0]
original = [r['face'] for r in recs]
for scale in [float(x) for x in sys.argv[1:]]:
    for r, face in zip(recs, original):
        r['face'] = copy.copy(face)
        w = np.array(face.landmark_weights, np.float32)
        w[OVAL] = np.where(w[OVAL] > 0, np.maximum(w[OVAL] * scale, 1e-3), 0.0)
        r['face'].landmark_weights = w
    paired_variant(f'oval x{scale}', PRESET, f'oval{scale}', recs)

"""Would averaging MediaPipe's readings of jittered crops (small in-plane turns, zooms, shifts; each mirror averaged,
mapped back) with the shipped reading lower the landmark error against the truth? (2026-12-07; not kept: see
docs/fitting.md, "More test-time augmentation of the detector"). Wild renders of a seed that no benchmark uses;
NME = RMS distance to the true embedded points over the true landmarks' box size; means and medians of the readings.
usage: ttaexp.py SEED N        (seed 7, 30 cases: about 1.5 minutes on 2 cores)"""
import sys, time
import numpy as np, cv2
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fitter.bench.synthetic import PreparedCase, true_landmarks
from fitter.synth.cases import render_case, sample_case
from fitter.io import LoadedImage
from fitter.model import load_ict
from fitter.observe import observe_image
from fitter.observe import mediapipe_backend as mb
from fitter.observe.geometry import PAD_VALUE, box_iou, points_box

def read_warped(lm, rgb, box, angle, factor, dx, dy, mirror=True):
    size_face = max(box[2]-box[0], box[3]-box[1])
    cx, cy = (box[0]+box[2])/2 + dx*size_face, (box[1]+box[3])/2 + dy*size_face
    side = factor * size_face
    size = int(min(max(side, 256), 512))
    scale = size / side
    a = np.radians(angle)
    turn = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    fwd = scale * turn
    shift = size/2.0 - fwd @ np.array([cx, cy])
    to_index = np.hstack([fwd, (shift + fwd @ np.array([0.5, 0.5]) - 0.5)[:, None]])
    crop = cv2.warpAffine(rgb, to_index, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,)*3)
    region = np.array([0., 0., size, size], np.float32)
    found = mb._observe_region(lm, crop, region)
    back = np.linalg.inv(fwd)
    to_img = lambda p: ((p.astype(np.float64) - shift) @ back.T)
    best = max(found, key=lambda f: box_iou(points_box(to_img(f.landmarks)), box), default=None)
    if best is None or box_iou(points_box(to_img(best.landmarks)), box) < 0.5:
        return None
    if mirror:
        best = mb._mirror_averaged(lm, crop, crop, best)
    return to_img(best.landmarks)

JITTERS = {
    'rot': [(a, 2.0, 0, 0) for a in (-8, 8)],
    'rot4': [(a, 2.0, 0, 0) for a in (-10, -5, 5, 10)],
    'scale': [(0, f, 0, 0) for f in (1.6, 2.5)],
    'shift': [(0, 2.0, dx, dy) for dx, dy in ((-0.08, 0), (0.08, 0), (0, -0.08), (0, 0.08))],
    'base_crop': [(0, 2.0, 0, 0)],
}
JITTERS['scale3'] = [(0, f, 0, 0) for f in (1.5, 2.0, 2.7)]
JITTERS['scalerot'] = [(0, 1.6, 0, 0), (0, 2.5, 0, 0), (-8, 2.0, 0, 0), (8, 2.0, 0, 0)]
JITTERS['scale_nomirror'] = [(0, f, 0, 0, False) for f in (1.6, 2.5)]
JITTERS['all'] = JITTERS['rot'] + JITTERS['scale'] + JITTERS['shift']

seed, n = int(sys.argv[1]), int(sys.argv[2])
model = load_ict()
lm = mb.get_landmarker()
rows = []
t0 = time.time()
for i in range(n):
    case = sample_case(model, i, seed, 512, appearance='wild')
    rendered = render_case(model, case)
    truth = true_landmarks(model, PreparedCase(case, rendered, None, 0.0)).astype(np.float64)
    obs = observe_image(LoadedImage.from_array(np.ascontiguousarray(rendered.image)), cache=False, largest=True)
    if not obs.faces:
        continue
    base = obs.faces[0].landmarks.astype(np.float64)
    if box_iou(points_box(base), points_box(truth)) < 0.5:
        continue
    size = np.sqrt(np.prod(np.ptp(truth, 0)))
    nme = lambda p: float(np.sqrt(((p - truth)**2).sum(1).mean()) / size)
    box = points_box(base)
    reads = {}
    for name, js in JITTERS.items():
        if name == 'all':
            continue
        reads[name] = [r for r in (read_warped(lm, rendered.image, box, *j) for j in js) if r is not None]
    reads['all'] = reads['rot'] + reads['scale'] + reads['shift']
    row = {'base': nme(base)}
    for name, rs in reads.items():
        row[name] = nme(np.mean([base] + rs, 0)) if rs else row['base']
        row[name + '_med'] = nme(np.median(np.array([base] + rs), 0)) if rs else row['base']
    row['base_crop_alone'] = nme(reads['base_crop'][0]) if reads['base_crop'] else row['base']
    rows.append(row)
    print(i, {k: round(v, 4) for k, v in row.items()}, flush=True)
keys = list(rows[0])
r = np.array([[row[k] for k in keys] for row in rows])
print(f'{len(rows)} faces, {time.time()-t0:.0f} s')
for j, k in enumerate(keys):
    print(f'{k:16s} median {np.median(r[:, j]):.4f} mean {r[:, j].mean():.4f} better {(r[:, j] < r[:, 0] - 1e-6).sum()} worse {(r[:, j] > r[:, 0] + 1e-6).sum()}')

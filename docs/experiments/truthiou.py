"""How well the TRUE geometry agrees with the landmark-drawn part masks, against fits (wild seed 0, cases 0-39).

The part IoU of `facefit bench photos` and of the no-harm guard measures agreement with masks drawn from
MediaPipe's landmarks (facer's weights cannot be downloaded here). This renders the true geometry's part labels
into the same crop and compares its IoU with that of `fast`'s landmark stages and of its PRDL stage (unguarded),
by how far the face is turned. Behind "Part IoU is not a truth score" in docs/segmentation.md.
usage: truthiou.py [PRESET]"""
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import MODEL, load_preset, np, prepare_synthetic, proc_error, run  # noqa: E402

import torch  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from fitter.evidence import Evidence  # noqa: E402
from fitter.observe.segmentation import PART_NAMES  # noqa: E402
from fitter.optimize.quality import part_ious  # noqa: E402
from fitter.render import rasterize, render_labels  # noqa: E402
from fitter.scene import Scene  # noqa: E402
from fitter.synth.cases import sample_case  # noqa: E402
from fitter.synth.scenes import case_K  # noqa: E402


def truth_ious(rec, case, crop):
    """Per part: IoU of the true geometry's rendered part labels with the masks, in the fitting crop."""
    cam = torch.as_tensor(rec['truth'], dtype=torch.float32)[None]
    frags = rasterize(cam, MODEL.topology.triangles, crop.K(case_K(case)), (crop.size, crop.size))
    labels = render_labels(frags, MODEL.topology.vertex_labels['parts'], len(PART_NAMES) + 1, soft=False)[0].numpy()
    origin = (float(rec['masks'].region[0]), float(rec['masks'].region[1]))
    out = {}
    for k, part in enumerate(PART_NAMES):
        target = crop.mask(rec['masks'].mask(part), origin)
        if target.sum():
            out[part] = float((target & (labels == k + 1)).sum() / max((target | (labels == k + 1)).sum(), 1))
    return out


preset = load_preset(sys.argv[1] if len(sys.argv) > 1 else 'fast')
upto = {'landmarks': ('rigid', 'landmarks'), 'prdl': ('rigid', 'landmarks', 'prdl')}
rows = []
for rec in prepare_synthetic(40, 0, 'wild'):
    index = int(rec['name'][4:])
    case = sample_case(MODEL, index, 0, 512, appearance='wild')
    ev = Evidence.single(rec['face'], rec['size'], rec['photo'], rec['masks'], rec.get('exif'))
    crop = ev.frames[0].crop(preset['crop']['size'], preset['crop']['margin'])
    row = {'index': index, 'truth': truth_ious(rec, case, crop)}
    for name, stages in upto.items():
        p = copy.deepcopy(preset)
        p['stages'] = [s for s in p['stages'] if s['name'] in stages]
        state, _ = run(rec, p, guard=False)
        row[name] = part_ious(MODEL, Scene(MODEL, state), rec['masks'], crop)
        row[name + '_mm'] = float(proc_error(rec, state))
    row['yaw'] = abs(float(Rotation.from_rotvec(case.rotation).as_euler('YXZ', degrees=True)[0]))
    rows.append(row)


def mean_iou(d):
    return float(np.mean(list(d.values())))


for lo, hi in ((0, 15), (15, 30), (30, 45), (45, 90)):
    sel = [r for r in rows if lo <= r['yaw'] < hi]
    if sel:
        print(f"|yaw| {lo}-{hi} deg, {len(sel)} faces: mean part IoU (median over faces) truth "
              f"{np.median([mean_iou(r['truth']) for r in sel]):.3f}, landmark stages "
              f"{np.median([mean_iou(r['landmarks']) for r in sel]):.3f}, + PRDL {np.median([mean_iou(r['prdl']) for r in sel]):.3f}")
for part in PART_NAMES:
    t = [r['truth'][part] for r in rows if part in r['truth'] and part in r['prdl']]
    f = [r['prdl'][part] for r in rows if part in r['truth'] and part in r['prdl']]
    print(f"{part}: truth {np.median(t):.3f}, fit after PRDL {np.median(f):.3f} ({len(t)} faces)")

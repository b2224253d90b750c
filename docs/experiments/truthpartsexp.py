"""Part agreement with a perfect segmentation: do default's fits place the facial parts better or worse than fast's?

The real photos' part IoU (`facefit bench photos`, the no-harm guard) is measured against masks drawn from
MediaPipe's landmarks (facer's weights cannot be downloaded here), and there default's median is ~0.01 below
fast's. On the wild renders the truth is known, so each fit's rendered part labels can be compared both with the
landmark-drawn masks and with the TRUE geometry's part labels rendered into the same crop (what a perfect parser
would see, occluders aside; bench.json's `part_iou_truth` since 2026-12-07). The fits are the benchmark's own
(`fitter.bench.synthetic`: the same render, detection, masks and `fit_face` as `facefit bench synthetic --appearance
wild --seed SEED --preset P`).
usage: truthpartsexp.py SEED [N] [LM,PRDL]     (about 17 minutes for 50 cases on 2 cores)
LM,PRDL: the landmark and PRDL weights of default's photometric stages (the holds; shipped 0.3,1.0), default's row
then named `default-holds`."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fitter.bench.synthetic import case_masks, match_face, prepare, true_part_ious  # noqa: E402
from fitter.bench.synthetic import mean_part_iou as mean  # noqa: E402
from fitter.model import load_ict  # noqa: E402
from fitter.metrics import procrustes_error  # noqa: E402
from fitter.observe.segmentation import PART_NAMES  # noqa: E402
from fitter.optimize.fit import fit_face  # noqa: E402
from fitter.optimize.presets import load_preset  # noqa: E402
from fitter.optimize.quality import part_ious  # noqa: E402
from fitter.scene import Scene  # noqa: E402

MODEL = load_ict()
REGION = MODEL.topology.region('face')


def main() -> None:
    seed = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    presets = {name: load_preset(name) for name in ('fast', 'default')}
    if len(sys.argv) > 3:  # default with other holds in its photometric stages
        lm, prdl = (float(v) for v in sys.argv[3].split(','))
        for stage in presets['default']['stages']:
            if stage['name'].startswith('photometric'):
                stage['weights'] = dict(stage['weights'], landmarks=lm, prdl=prdl)
    rows = []
    for prepared in prepare(MODEL, n, seed, 512, 'wild'):
        face = match_face(prepared, MODEL)
        if face is None:
            continue
        photo = prepared.rendered.image.astype(np.float32) / 255.0
        row = {'index': prepared.case.index}
        for name, p in presets.items():
            masks = case_masks(MODEL, prepared, face, 'pipeline', p)
            fit = fit_face(MODEL, face, prepared.case.image_size, p, masks=masks, photo=photo)
            scene = Scene(MODEL, fit.state)
            with torch.no_grad():
                cam = scene.camera_vertices()[:1]
                row[name] = {'mm': float(procrustes_error(cam[0].numpy()[REGION],
                                                          prepared.rendered.camera_vertices[REGION]) * 10),
                             'truth': true_part_ious(MODEL, prepared, cam, scene.K()[:1], fit.crop),
                             'masks': part_ious(MODEL, scene, masks, fit.crop)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f'wild seed {seed}, {len(rows)} faces (median over faces of the mean part IoU; Procrustes median mm)')
    for name in presets:
        print(f"{name:8s} vs true parts {np.median([mean(r[name]['truth']) for r in rows]):.4f} "
              f"vs landmark masks {np.median([mean(r[name]['masks']) for r in rows]):.4f} "
              f"mm {np.median([r[name]['mm'] for r in rows]):.3f}")
    for kind in ('truth', 'masks'):
        d = np.array([mean(r['default'][kind]) - mean(r['fast'][kind]) for r in rows])
        print(f'default - fast, {kind}: paired median {np.median(d):+.4f}, mean {d.mean():+.4f}, '
              f'default higher on {(d > 0).sum()} of {len(d)}')
    for part in PART_NAMES:
        both = [r for r in rows if part in r['fast']['truth'] and part in r['default']['truth']]
        print(f"{part:10s} vs truth fast {np.median([r['fast']['truth'][part] for r in both]):.3f} default "
              f"{np.median([r['default']['truth'][part] for r in both]):.3f}; vs masks fast "
              f"{np.nanmedian([r['fast']['masks'].get(part, np.nan) for r in rows]):.3f} default "
              f"{np.nanmedian([r['default']['masks'].get(part, np.nan) for r in rows]):.3f}")


if __name__ == '__main__':
    main()

"""A final alignment stage after default's photometric stages: pose and expression (identity, light, albedo and
focal fixed) fitted again to the landmarks and parts, so the shape read from shading is kept while the
expression and pose drift of the Adam stages is undone. docs/photometric.md, "A final alignment".
From cached post-PRDL states (wild seed 0, 47 faces; the 13 real faces of ../shared/data/images): default's
photometric stages (guarded), then the stage; prints shape error and the dense 2D error (the face region's pixels
against the true ones, in face sizes: what an overlay shows) of the wild faces, and part IoU / NME (both), before
and after.
usage: alignexp.py '{"weights": {...}, "iterations": 25, "rounds": 2}'"""
import glob, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import SHARED, np, prdl_states, prepare_real, prepare_synthetic, proc_error, run
from allexp import preset_for, without_256
import torch
from photexp import MODEL, REGION
from fitter.scene import Scene
from fitter.synth.cases import sample_case
from fitter.optimize.fit import with_turn_weights


def dense_2d(rec, state, focal):
    """Mean pixel distance of the face region's vertices from their true pixels, over the true face's size."""
    h, w = rec['size']
    with torch.no_grad():
        cam = Scene(MODEL, state).camera_vertices()[0][REGION]
        px = (cam @ state.K()[0].T)
        px = (px[:, :2] / px[:, 2:]).numpy()
    t = rec['truth'][REGION]
    tp = t[:, :2] / t[:, 2:] * focal + np.array([w / 2.0, h / 2.0])
    size = np.sqrt(np.prod(tp.max(0) - tp.min(0)))
    return float(np.linalg.norm(px - tp, axis=1).mean() / size)


def main():
    spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    stage = {'name': 'align', 'free': ['rotation', 'translation', 'expression'], 'iterations': 25, 'rounds': 2,
             'weights': {'landmarks': 0.3, 'prdl': 1.0, 'expression_prior': 0.3}}
    stage.update(spec)
    preset = without_256(preset_for({}))  # the schedule its figures came from
    with_align = dict(preset, stages=preset['stages'] + [with_turn_weights(stage, preset)])
    for ds, recs, key in (('wild', prepare_synthetic(50, 0, 'wild'), 'S26wild'),
                          ('real', prepare_real(sorted(glob.glob(str(SHARED / 'data' / 'images' / '*')))), 'S26real')):
        rows = []
        for rec, (st, _) in zip(recs, prdl_states(recs, preset, key)):
            photo, q = run(rec, preset, stages_from='photometric-64', start_state=st)
            aligned, qa = run(rec, with_align, stages_from='align', start_state=photo)
            last = q[list(q)[-1]]
            row = {'name': rec['name'], 'iou': last['iou_mean'], 'nme': last['nme_mean'],
                   'iou_a': qa['align']['iou_mean'], 'nme_a': qa['align']['nme_mean'],
                   'reverted': qa['align'].get('reverted')}
            if 'truth' in rec:
                f = sample_case(MODEL, int(rec['name'][4:]), 0, 512, appearance='wild').focal
                row.update(err=proc_error(rec, photo), err_a=proc_error(rec, aligned),
                           d2=dense_2d(rec, photo, f), d2_a=dense_2d(rec, aligned, f))
            rows.append(row)
            print(json.dumps(row), flush=True)
        med = lambda k: float(np.median([r[k] for r in rows]))
        out = {k: round(med(k), 4) for k in ('iou', 'iou_a', 'nme', 'nme_a') + (('err', 'err_a', 'd2', 'd2_a') if ds == 'wild' else ())}
        if ds == 'wild':
            d = np.array([r['err_a'] - r['err'] for r in rows])
            out.update(paired=round(float(np.median(d)), 3), better=int((d < -0.01).sum()), worse=int((d > 0.01).sum()))
            d2 = np.array([r['d2_a'] - r['d2'] for r in rows])
            out.update(d2_paired=round(float(np.median(d2)), 4), d2_better=int((d2 < 0).sum()), d2_worse=int((d2 > 0).sum()))
        print(ds, json.dumps(out), flush=True)


if __name__ == '__main__':
    main()

"""One variant over wild (shape error), real photos (IoU/NME) and GRID (identity consistency).
usage: allexp.py NAME '{"prdl": {stage edits}, "photo": {stage edits}, "top": {...}, "prdl_name": "P0"}'
("turn": false leaves out the preset's turn weights, as every run before 2026-12-04 did)"""
import sys, json, copy, time, glob; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import *
from gridexp import prepare_grid, speaker_faces
from fitter.bench.consistency import neutral_face, consistency

def edit(stage, edits):
    for k, v in edits.items():
        if k == 'weights': stage['weights'].update(v)
        elif k == 'lr_scale': stage['lr'] = {a: b * v.get(a, 1.0) for a, b in stage['lr'].items()}
        elif k == 'iter_scale': stage['iterations'] = int(round(stage['iterations'] * v))
        else: stage[k] = v

def preset_for(spec):
    p = load_preset('default')
    if spec.get('top'): p = merge(p, spec['top'])
    if spec.get('turn', True):  # the preset's [turn_noise] on every stage, as fit_subject applies it (2026-12-04)
        from fitter.optimize.fit import with_turn_weights
        p['stages'] = [with_turn_weights(s, p) for s in p['stages']]
    for s in p['stages']:
        if s['name'] == 'prdl': edit(s, spec.get('prdl', {}))
        if s['name'].startswith('photometric'): edit(s, spec.get('photo', {}))
    return p

def without_256(preset):
    """default before its 256-px photometric stage (2026-12-05): the schedule the earlier figures came from."""
    preset['stages'] = [s for s in preset['stages'] if s['name'] != 'photometric-256']
    return preset


def records(dataset, wild_n=20):
    """The cached cases of one dataset: 'wild' (the first ``wild_n`` of seed 0), 'real' or 'grid'."""
    if dataset == 'wild':
        return prepare_synthetic(wild_n, 0, 'wild')
    if dataset == 'real':
        return prepare_real(sorted(glob.glob(str(SHARED / 'data' / 'images' / '*'))))
    return prepare_grid()


def main():
    name, spec = sys.argv[1], json.loads(sys.argv[2])
    preset = preset_for(spec)
    key = spec.get('prdl_name', 'P0')
    guard = spec.get('guard', False)
    res = {}
    t0 = time.time()
    for ds in spec.get('datasets', ['wild', 'real', 'grid']):
        recs = records(ds)
        pp = prdl_states(recs, preset, key)
        finals = []
        for rec, (st, q) in zip(recs, pp):
            if spec.get('no_photo'):
                finals.append((st, q))
            else:
                state, qq = run(rec, preset, stages_from='photometric-64', start_state=st, guard=guard)
                finals.append((state, qq))
        if ds == 'wild':
            res['wild_pp'] = float(np.median([proc_error(r, s) for r, (s, _) in zip(recs, pp)]))
            res['wild'] = float(np.median([proc_error(r, s) for r, (s, _) in zip(recs, finals)]))
        elif ds == 'real':
            last = lambda q: q[list(q)[-1]]
            res['real_iou_pp'] = float(np.median([last(q)['iou_mean'] for _, q in pp]))
            res['real_iou'] = float(np.median([last(q)['iou_mean'] for _, q in finals]))
            res['real_nme'] = float(np.median([last(q)['nme_mean'] for _, q in finals]))
            res['real_iou_min_delta'] = float(np.min([last(q)['iou_mean'] - last(q0)['iou_mean'] for (_, q), (_, q0) in zip(finals, pp)]))
        else:
            for tag, states in (('pp', pp), ('', finals)):
                c = consistency(speaker_faces(recs, [s.identity for s, _ in states]))
                res[f'grid_within{tag and "_"+tag}'] = c['within_mm']; res[f'grid_between{tag and "_"+tag}'] = c['between_mm']
                res[f'grid_ratio{tag and "_"+tag}'] = c['ratio']
        print(name, ds, json.dumps({k: round(v, 4) for k, v in res.items()}), 'min %.1f' % ((time.time() - t0) / 60), flush=True)


if __name__ == '__main__':
    main()

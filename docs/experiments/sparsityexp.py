"""A preset variant's post-PRDL states (default's rigid, landmark and PRDL stages, unguarded) over wild seed 0
(cases 0-49, 47 detected), the real photos and the GRID frames; with "final": true also default's photometric
stages from there (guarded). Behind "A sparse expression" in docs/fitting.md; writes $EXP_OUT/sp_NAME.json (default: here) with
per-case figures (pair two runs with pairexp.py).
usage: sparsityexp.py NAME '{"key": "CACHEKEY", "top": {"expression_prior": {"sparsity": 2.0}}, "final": false,
                             "datasets": ["wild", "real", "grid"]}'"""
import sys, json, time, glob, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from allexp import *
name, spec = sys.argv[1], json.loads(sys.argv[2])
preset = preset_for(spec)
key = spec['key']
res = {}; per = {}
t0 = time.time()
for ds in spec.get('datasets', ['wild', 'real', 'grid']):
    recs = records(ds, wild_n=50)
    pp = prdl_states(recs, preset, key)
    sets = [('pp', pp)]
    if spec.get('final'):
        finals = [run(rec, preset, stages_from='photometric-64', start_state=st, guard=True) for rec, (st, q) in zip(recs, pp)]
        sets.append(('fin', finals))
    last = lambda q: q[list(q)[-1]]
    for tag, states in sets:
        if ds == 'wild':
            errs = [proc_error(r, s) for r, (s, _) in zip(recs, states)]
            per[f'wild_{tag}'] = errs; res[f'wild_{tag}'] = float(np.median(errs)); res[f'wild_{tag}_mean'] = float(np.mean(errs))
        elif ds == 'real':
            per[f'real_iou_{tag}'] = [last(q)['iou_mean'] for _, q in states]; per[f'real_nme_{tag}'] = [last(q)['nme_mean'] for _, q in states]
            res[f'real_iou_{tag}'] = float(np.median(per[f'real_iou_{tag}'])); res[f'real_nme_{tag}'] = float(np.median(per[f'real_nme_{tag}']))
        else:
            c = consistency(speaker_faces(recs, [s.identity for s, _ in states]))
            res[f'grid_{tag}'] = [round(c['within_mm'], 3), round(c['between_mm'], 3), round(c['ratio'], 3)]
            per[f'grid_nme_{tag}'] = [last(q)['nme_mean'] for _, q in states]
            res[f'grid_nme_{tag}'] = float(np.median(per[f'grid_nme_{tag}']))
    print(name, ds, json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}), 'min %.1f' % ((time.time() - t0) / 60), flush=True)
    json.dump({'res': res, 'per': per}, open(Path(os.environ.get('EXP_OUT', '.')) / f'sp_{name}.json', 'w'))

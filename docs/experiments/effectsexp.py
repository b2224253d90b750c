"""Which wild effects the photometric stages cannot see through: wild renders of seed 0 (the first N cases) with
named effects left out (fitter.synth.wild.sample_wild's ``without``; every other effect exactly as before), fitted
with default's stages (guarded, the preset's turn weights), Procrustes error after the PRDL stage and after the
photometric stages, per case. Behind the "Which effects" table of docs/photometric.md; see README.md here.
usage: effectsexp.py NAME WITHOUT [N]     (WITHOUT: comma-separated effect names, none, or clean: the same cases
                                           rendered with the clean appearance)
  effectsexp.py full none 24
  effectsexp.py noshadow cast_shadows,ambient_occlusion 24"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import load_preset, np, prepare_synthetic, proc_error, run
from fitter.optimize.fit import with_turn_weights

name, without = sys.argv[1:3]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 24
appearance = 'clean' if without == 'clean' else 'wild'
without = () if without in ('none', 'clean') else tuple(without.split(','))

preset = load_preset('default')
preset['stages'] = [with_turn_weights(s, preset) for s in preset['stages']]
shape_stages = dict(preset, stages=[s for s in preset['stages'] if s['name'] in ('rigid', 'landmarks', 'prdl')])
photo_from = next(s['name'] for s in preset['stages'] if s['name'].startswith('photometric'))
rows = {}
for rec in prepare_synthetic(n, 0, appearance, without):  # the detected cases
    state, _ = run(rec, shape_stages, guard=True)
    before = proc_error(rec, state)
    state, q = run(rec, preset, stages_from=photo_from, start_state=state, guard=True)
    rows[rec['name']] = (round(float(before), 3), round(float(proc_error(rec, state)), 3))
b, a = np.array([v[0] for v in rows.values()]), np.array([v[1] for v in rows.values()])
print(name, 'n', len(rows), 'post-PRDL %.3f (%.3f) photometric %.3f (%.3f) paired %+.3f better %d worse %d'
      % (np.median(b), b.mean(), np.median(a), a.mean(), np.median(a - b), (a < b).sum(), (a > b).sum()),
      json.dumps(rows), flush=True)

"""Turn weights on wild renders (seed 0, the first N cases; guarded): a preset's stages with the landmark/PRDL
energies weighed by how far the face is turned, per-case Procrustes errors. Behind the "Turned faces" table of
docs/fitting.md; see README.md here. The harness runs the stages itself, so the preset's own [turn_noise] is not
applied: DEG 0 is the fit without turn weights, DEG < 0 scales every face's TERMS weights by -DEG (the control).
usage: turnexp.py NAME PRESET STAGES DEG POWER TERMS [N]     (STAGES: comma-separated names, or all)
  turnexp.py D_base default all 0 0 x
  turnexp.py D_32_2.5 default all 32 2.5 landmarks,prdl
  FLAT=0.5 turnexp.py F_both fast all 32 2.5 landmarks,prdl     (FLAT: every face's TERMS weights scaled too)"""
import copy, json, os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import load_preset, np, prepare_synthetic, proc_error, run

name, preset_name, stages, deg, power, terms = sys.argv[1:7]
n = int(sys.argv[7]) if len(sys.argv) > 7 else 50
terms = terms.split(',')
preset = load_preset(preset_name)
stages = stages.split(',')
preset['stages'] = [copy.deepcopy(s) for s in preset['stages'] if stages == ['all'] or s['name'] in stages]
scale = -float(deg) if float(deg) < 0 else float(os.environ.get('FLAT', '1'))
for s in preset['stages']:
    for t in terms:
        if t in s['weights']:
            s['weights'][t] = s['weights'][t] * scale
    if float(deg) > 0:
        s['turn_weights'] = {'degrees': float(deg), 'power': float(power), 'terms': terms}
recs = prepare_synthetic(n, 0, 'wild')
errors = [proc_error(rec, run(rec, preset, guard=True)[0]) for rec in recs]
print(name, 'n', len(errors), 'median %.3f mean %.3f' % (np.median(errors), np.mean(errors)),
      json.dumps({r['name']: round(float(e), 3) for r, e in zip(recs, errors)}), flush=True)

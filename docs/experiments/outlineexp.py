"""The outline term (fitter/energy/outline.py) in fast's PRDL stage, from cached post-landmark states (wild seed 0,
cases 0-49, unguarded). Behind "The outline without rendering" in docs/fitting.md; see README.md here.
usage: outlineexp.py NAME '{"weight": 1.0, "sigma": 0.01, "landmarks": 0.3, "prdl": 1.0}'"""
import json, pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import CACHE, np, prepare_synthetic, proc_error, run
from fitter.optimize.presets import load_preset


def preset_for(spec):
    from fitter.optimize.fit import with_turn_weights
    p = load_preset(spec.get('preset', 'fast'))
    p['outline'] = dict(p['outline'], **{k: spec[k] for k in ('sigma', 'region', 'points', 'robust_delta') if k in spec})
    p['stages'] = [with_turn_weights(s, p) for s in p['stages']]
    for s in p['stages']:
        if s['name'] == 'prdl':
            s['weights'] = dict(s['weights'], outline=float(spec.get('weight', 0.0)))
            for term in ('landmarks', 'prdl'):
                if term in spec:
                    s['weights'][term] = float(spec[term])
        if s['name'] == 'landmarks' and spec.get('landmark_stage'):
            s['weights'] = dict(s['weights'], outline=float(spec['landmark_stage']))
    return p


def landmark_states(recs, preset, key):
    pre = dict(preset); pre['stages'] = [s for s in preset['stages'] if s['name'] in ('rigid', 'landmarks')]
    out = []
    for rec in recs:
        f = CACHE / f"lm_{key}_{rec['name']}.pkl"
        if not f.exists():
            pickle.dump(run(rec, pre, guard=False), open(f, 'wb'))
        out.append(pickle.load(open(f, 'rb')))
    return out


def main():
    name, spec = sys.argv[1], json.loads(sys.argv[2])
    preset = preset_for(spec)
    recs = prepare_synthetic(int(spec.get('n', 50)), int(spec.get('seed', 0)), 'wild')
    key = f"fast{spec.get('seed', 0)}" + ('_lmo%g' % spec['landmark_stage'] if spec.get('landmark_stage') else '')
    starts, errors = [], []
    for rec, (state, _) in zip(recs, landmark_states(recs, preset, key)):
        final, _ = run(rec, preset, stages_from='prdl', start_state=state, guard=False)
        starts.append(proc_error(rec, state)); errors.append(proc_error(rec, final))
    print(name, 'n', len(errors), 'landmarks %.3f (%.3f)' % (np.median(starts), np.mean(starts)),
          'prdl %.3f (%.3f)' % (np.median(errors), np.mean(errors)),
          'better/worse than landmarks %d/%d' % (sum(np.array(errors) < starts), sum(np.array(errors) > starts)),
          json.dumps([round(float(e), 3) for e in errors]), flush=True)


if __name__ == '__main__':
    main()

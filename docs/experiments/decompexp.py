"""Where default's wild shape error lives (docs/benchmark.md, "Where the wild error lives"): wild seed 0, 47 faces,
cached post-PRDL states of default and its photometric stages from there (guarded; the final states are cached as
well). Each state's error is measured again with its identity or expression (or one group of blendshapes)
replaced by the true one or by the mean face's.
usage: decompexp.py"""
import fnmatch, pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from photexp import CACHE, MODEL, np, prdl_states, prepare_synthetic, proc_error, run
from allexp import preset_for, without_256
from fitter.synth.cases import sample_case

GROUPS = {'eye': ('eye*',), 'brow': ('brow*',), 'jaw': ('jaw*',), 'mouth': ('mouth*',), 'cheek/nose': ('cheek*', 'nose*')}


def with_(state, identity=None, expression=None):
    s = state.detached()
    if identity is not None:
        s.identity = identity.reshape(s.identity.shape).to(s.identity)
    if expression is not None:
        s.expression = expression.reshape(s.expression.shape).to(s.expression)
    return s


def main():
    recs = prepare_synthetic(50, 0, 'wild')
    preset = without_256(preset_for({}))  # the schedule its figures came from
    pp = [st for st, _ in prdl_states(recs, preset, 'S26wild')]
    f = CACHE / 'final_S26wild.pkl'
    if not f.exists():
        pickle.dump([run(r, preset, stages_from='photometric-64', start_state=st)[0] for r, st in zip(recs, pp)],
                    open(f, 'wb'))
    finals = pickle.load(open(f, 'rb'))
    cases = [sample_case(MODEL, int(r['name'][4:]), 0, 512, appearance='wild') for r in recs]
    truth_id = [torch.as_tensor(c.identity) for c in cases]
    truth_ex = [torch.as_tensor(c.expression) for c in cases]
    names = list(MODEL.expression_names)
    for tag, states in (('post-PRDL', pp), ('final', finals)):
        rows = {'fitted': [], 'true expression': [], 'true identity': [], 'mean identity': [],
                'mean identity, true expression': []}
        for r, s, ti, te in zip(recs, states, truth_id, truth_ex):
            zero = torch.zeros_like(s.identity)
            rows['fitted'].append(proc_error(r, s))
            rows['true expression'].append(proc_error(r, with_(s, expression=te)))
            rows['true identity'].append(proc_error(r, with_(s, identity=ti)))
            rows['mean identity'].append(proc_error(r, with_(s, identity=zero)))
            rows['mean identity, true expression'].append(proc_error(r, with_(s, identity=zero, expression=te)))
        for k, v in rows.items():
            print(f'{tag:10s} {k:32s} median {np.median(v):.3f} mean {np.mean(v):.3f}')
        print(f'{tag:10s} |identity| median {np.median([float(s.identity.norm()) for s in states]):.2f}'
              f' (truth {np.median([float(t.norm()) for t in truth_id]):.2f}, {len(truth_id[0])} modes)')
    base = np.array([proc_error(r, s) for r, s in zip(recs, finals)])
    cosine = [float(s.identity.detach().ravel() @ t.to(s.identity) / (s.identity.norm() * t.norm()))
              for s, t in zip(finals, truth_id)]
    print(f'final      cosine of the fitted identity with the true one: median {np.median(cosine):.2f}')
    for k in (0.5, 1.5, 2.0):
        d = np.array([proc_error(r, with_(s, identity=s.identity * k)) for r, s in zip(recs, finals)]) - base
        print(f'final      identity x {k}: paired {np.median(d):+.3f} (better {(d < 0).sum()}, worse {(d > 0).sum()})')
    for g, patterns in GROUPS.items():
        ii = [i for i, n in enumerate(names) if any(fnmatch.fnmatch(n, p) for p in patterns)]
        errs = []
        for r, s, te in zip(recs, finals, truth_ex):
            e = s.expression.detach().clone()
            e[0, ii] = te[ii].to(e)
            errs.append(proc_error(r, with_(s, expression=e)))
        d = np.array(errs) - base
        print(f'final      true {g:10s} ({len(ii)} shapes) median {np.median(errs):.3f}, paired {np.median(d):+.3f} '
              f'(mean {d.mean():+.3f})')


if __name__ == '__main__':
    main()

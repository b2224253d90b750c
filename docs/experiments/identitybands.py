"""Which identity components carry default's wild error, and whether the fit's shrinkage or MediaPipe's
blendshape scores could be used (docs/benchmark.md, "Where the wild error lives"). Wild seed 0, 47 faces, the
cached states of decompexp.py (default before its 256-px stage) and of outlineexp.py (fast's landmark stages).
usage: identitybands.py"""
import pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from photexp import CACHE, MODEL, np, prepare_synthetic, proc_error
from decompexp import with_
from fitter.optimize.init import expression_from_blendshapes
from fitter.synth.cases import sample_case

BANDS = [(0, 5), (5, 10), (10, 20), (20, 40), (40, None)]


def paired(label, recs, states, base, edit):
    e = np.array([proc_error(r, edit(s, i)) for i, (r, s) in enumerate(zip(recs, states))])
    d = e - base
    print(f'  {label}: median {np.median(e):.3f} (mean {e.mean():.3f}), paired {np.median(d):+.3f}, '
          f'better {(d < 0).sum()} worse {(d > 0).sum()}')


def main():
    recs = prepare_synthetic(50, 0, 'wild')
    cases = [sample_case(MODEL, int(r['name'][4:]), 0, 512, appearance='wild') for r in recs]
    truth_id = [torch.as_tensor(c.identity) for c in cases]
    truth_ex = [torch.as_tensor(c.expression) for c in cases]
    guess = [torch.as_tensor(expression_from_blendshapes(r['face'].blendshapes or {}, list(MODEL.expression_names)),
                             dtype=torch.float32) for r in recs]
    states = {'landmarks (fast)': [pickle.load(open(CACHE / f"lm_fast0_{r['name']}.pkl", 'rb'))[0] for r in recs],
              'post-PRDL': [pickle.load(open(CACHE / f"pp_S26wild_{r['name']}.pkl", 'rb'))[0] for r in recs],
              'final': pickle.load(open(CACHE / 'final_S26wild.pkl', 'rb'))}
    for tag, ss in states.items():
        base = np.array([proc_error(r, s) for r, s in zip(recs, ss)])
        print(f'{tag}: {np.median(base):.3f} (mean {base.mean():.3f})')
        for lo, hi in BANDS:
            f = [s.identity.detach().ravel()[lo:hi].double() for s in ss]
            t = [x[lo:hi].double() for x in truth_id]
            cos = [float(a @ b / (a.norm() * b.norm() + 1e-12)) for a, b in zip(f, t)]
            print(f'  identity {lo}-{hi}: cosine with the truth {np.median(cos):.2f}, |fit| {np.median([float(a.norm()) for a in f]):.2f}'
                  f' |truth| {np.median([float(b.norm()) for b in t]):.2f}')

            def true_band(s, i, lo=lo, hi=hi):
                x = s.identity.detach().clone(); x.view(-1)[lo:hi] = truth_id[i][lo:hi].to(x); return with_(s, identity=x)
            paired(f'true identity {lo}-{hi}', recs, ss, base, true_band)
        for hi in (5, 10, 100):
            for k in (1.3, 2.0):
                def scaled(s, i, hi=hi, k=k):
                    x = s.identity.detach().clone(); x.view(-1)[:hi] *= k; return with_(s, identity=x)
                paired(f'first {hi} identity coefficients x{k}', recs, ss, base, scaled)
        paired("MediaPipe's blendshape scores as the expression", recs, ss, base,
               lambda s, i: with_(s, expression=guess[i]))
        paired('no expression', recs, ss, base, lambda s, i: with_(s, expression=torch.zeros_like(truth_ex[i])))
    f, t = states['final'], truth_id
    for k in range(8):
        a = np.array([float(s.identity.view(-1)[k]) for s in f]); b = np.array([float(x[k]) for x in t])
        print(f'final identity {k}: corr(fit, truth) {np.corrcoef(a, b)[0, 1]:.2f}, fit std {a.std():.2f} (truth 1)')


if __name__ == '__main__':
    main()

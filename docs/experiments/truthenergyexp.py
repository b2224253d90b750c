"""Is default's remaining wild error the optimiser's (a lower energy it did not find) or the energy's (the truth
costs more)? Wild seed 0, 47 faces: from default's post-PRDL states, its three photometric stages run with the
identity held at (a) the fit's own final identity, (b) the true identity, everything else (pose, expression,
light, albedo) relaxed the same way; the last stage's data energies (photometric, landmarks, PRDL; no priors) are
compared, and ``split`` divides the photometric term's 256-px per-pixel costs into the covered skin's residual,
the uncovered domain (kappa) and the background cost (docs/benchmark.md, "Where the wild error lives").
usage: truthenergyexp.py [N]            (all 47 faces: about 30 minutes on 2 cores)
       truthenergyexp.py split [N]      (the first N faces, 16 in the doc)"""
import pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from photexp import (CACHE, MODEL, Evidence, Scene, TermContext, build_terms, focal_guess, np, prdl_states,
                     prepare_synthetic, proc_error, run, stage_weight)
from allexp import preset_for
from decompexp import with_
from fitter.optimize.schedule import run_stage
from fitter.synth.cases import sample_case

DATA = ('photometric', 'landmarks', 'prdl')
PRESET = preset_for({})
STAGES = [dict(s, free=[x for x in s['free'] if x != 'identity']) for s in PRESET['stages']
          if s['name'].startswith('photometric')]


def states():
    """(records, post-PRDL states, default's final states), cached."""
    recs = prepare_synthetic(50, 0, 'wild')
    pp = [st for st, _ in prdl_states(recs, PRESET, 'S30')]
    f = CACHE / 'final_S30.pkl'
    if not f.exists():
        pickle.dump([run(r, PRESET, stages_from='photometric-64', start_state=st)[0] for r, st in zip(recs, pp)],
                    open(f, 'wb'))
    return recs, pp, pickle.load(open(f, 'rb'))


def paired_variant(label, preset, key, recs=None):
    """default's photometric stages of ``preset`` from the cached post-PRDL states (guarded; finals cached under
    ``key``), each face's error paired with the shipped finals'; prints one line. ``recs``: the cases, edited."""
    cases, pp, finals = states()
    recs = recs or cases
    base = np.array([proc_error(r, s) for r, s in zip(recs, finals)])
    f = CACHE / f'final_S30_{key}.pkl'
    if not f.exists():
        pickle.dump([run(r, preset, stages_from='photometric-64', start_state=st)[0] for r, st in zip(recs, pp)],
                    open(f, 'wb'))
    e = np.array([proc_error(r, s) for r, s in zip(recs, pickle.load(open(f, 'rb')))])
    d = e - base
    print(f'{label}: median {np.median(e):.3f} mean {e.mean():.3f}; paired median {np.median(d):+.3f}, better '
          f'{(d < -0.01).sum()} worse {(d > 0.01).sum()} (shipped: {np.median(base):.3f}, mean {base.mean():.3f})',
          flush=True)


def terms_for(rec):
    ev = Evidence.single(rec['face'], rec['size'], rec['photo'], rec['masks'], rec.get('exif'))
    return build_terms(TermContext(MODEL, ev, PRESET, [focal_guess(rec['size'], PRESET, rec.get('exif'))]))[0]


def relaxed(rec, state):
    """default's photometric stages with the identity held: (state, the last stage's energies)."""
    terms, state, init = terms_for(rec), state.detached(), set()
    for st in STAGES:
        for n, t in terms.items():
            if stage_weight(st, n):
                t.configure(st)
                if n not in init:
                    t.initialise(Scene(MODEL, state)); init.add(n)
        log = run_stage(MODEL, state, st, terms, PRESET['optimizer'])
    return state, log.energies


def photometric_split(rec, state):
    """The 256-px photometric energy's parts: covered residual, uncovered domain, background (per domain pixel)."""
    t = terms_for(rec)['photometric']
    t.configure(STAGES[-1])
    with torch.no_grad():
        r = t.render(Scene(MODEL, state))
        cost, dom, cov = t.pixel_costs(r), r['valid'].float(), r['coverage']
        n, kappa = float(dom.sum()), t.uncovered_cost * t.delta ** 2
        back = t.background_cost * t.delta ** 2 * r['front'] * r['background'] if t.background_cost else 0 * cost
        return {'residual': float((cov * cost * dom).sum()) / n, 'uncovered': float(((1 - cov) * kappa * dom).sum()) / n,
                'background': float(back.sum()) / n}


def main():
    split = len(sys.argv) > 1 and sys.argv[1] == 'split'
    args = sys.argv[2:] if split else sys.argv[1:]
    recs, pp, finals = states()
    n = int(args[0]) if args else len(recs)
    rows = []
    for r, p, s in list(zip(recs, pp, finals))[:n]:
        truth = torch.as_tensor(sample_case(MODEL, int(r['name'][4:]), 0, 512, appearance='wild').identity)
        row = {}
        for tag, identity in (('fit', s.identity.detach()), ('true', truth)):
            st, en = relaxed(r, with_(p, identity=identity))
            row[tag] = photometric_split(r, st) if split else {k: float(en.get(k, 0.0)) for k in DATA}
            row[tag]['error_mm'] = proc_error(r, st)
        rows.append(row)
        print(r['name'], ' | '.join(f'{k}: ' + ' '.join(f'{a} {b:.3f}' for a, b in v.items()) for k, v in row.items()),
              flush=True)
    keys = [k for k in rows[0]['fit'] if k != 'error_mm']
    if not split:
        for row in rows:
            for tag in row:
                row[tag]['data'] = sum(row[tag][k] for k in DATA)
        keys.append('data')
    for k in keys:
        d = np.array([row['true'][k] - row['fit'][k] for row in rows])
        print(f'true identity minus the fit\'s, {k}: median {np.median(d):+.3f}, lower with the truth on '
              f'{(d < 0).sum()} of {len(d)} faces')


if __name__ == '__main__':
    main()

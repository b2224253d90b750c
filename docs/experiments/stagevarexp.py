"""default's photometric schedule varied, from cached post-PRDL states (wild seed 0, 47 faces, guarded):
docs/photometric.md, "A third photometric stage at 256 px". Prints each face's error and the paired summary
against the schedule without the 256-px stage (as shipped before 2026-12-05).
usage: stagevarexp.py with256|iters2|it160|lr2
(it160: the 256-px stage with 160 iterations; lr2: the 256-px stage at the 128-px stage's rates)"""
import copy, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import np, prdl_states, prepare_synthetic, proc_error, run
from allexp import preset_for, without_256


def main():
    variant = sys.argv[1]
    recs = prepare_synthetic(50, 0, 'wild')
    shipped = preset_for({})
    pp = [st for st, _ in prdl_states(recs, shipped, 'S26wild')]
    before = without_256(copy.deepcopy(shipped))
    p = copy.deepcopy(before)
    if variant == 'with256':
        p = shipped
    elif variant in ('it160', 'lr2'):
        p = copy.deepcopy(shipped)
        s256 = next(s for s in p['stages'] if s['name'] == 'photometric-256')
        if variant == 'it160':
            s256['iterations'] = 160
        else:
            s256['lr'] = {k: 2 * v for k, v in s256['lr'].items()}
    elif variant == 'iters2':
        for s in p['stages']:
            if s['name'].startswith('photometric'):
                s['iterations'] = 2 * int(s['iterations'])
    errs = []
    for r, st in zip(recs, pp):
        a = proc_error(r, run(r, before, stages_from='photometric-64', start_state=st)[0])
        b = proc_error(r, run(r, p, stages_from='photometric-64', start_state=st)[0])
        errs.append((a, b))
        print(json.dumps({'name': r['name'], 'before': round(a, 3), variant: round(b, 3)}), flush=True)
    e = np.array(errs)
    d = e[:, 1] - e[:, 0]
    print(variant, 'before %.3f (mean %.3f) -> %.3f (mean %.3f), paired %+.3f, better %d, worse %d' % (
        np.median(e[:, 0]), e[:, 0].mean(), np.median(e[:, 1]), e[:, 1].mean(), np.median(d), (d < -0.01).sum(),
        (d > 0.01).sum()), flush=True)


if __name__ == '__main__':
    main()

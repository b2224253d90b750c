"""The photometric term's Geman-McClure knee (robust_delta, units of sigma; 3 shipped): default's photometric
stages from the same post-PRDL states (wild seed 0, 47 faces, guarded), paired with the shipped knee's finals
(docs/photometric.md, "How robust the photometric loss is"); the states are truthenergyexp.py's.
usage: kneeexp.py KNEE [KNEE ...]       (about 9 minutes a knee on 2 cores)"""
import pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import CACHE, np, proc_error, run
from allexp import preset_for
from truthenergyexp import states

recs, pp, finals = states()
base = np.array([proc_error(r, s) for r, s in zip(recs, finals)])
print('knee 3 (shipped): median %.3f mean %.3f' % (np.median(base), base.mean()), flush=True)
for knee in [float(x) for x in sys.argv[1:]]:
    p = preset_for({'top': {'photometric': {'robust_delta': knee}}})
    f = CACHE / f'final_S30_knee{knee}.pkl'
    if not f.exists():
        pickle.dump([run(r, p, stages_from='photometric-64', start_state=st)[0] for r, st in zip(recs, pp)], open(f, 'wb'))
    e = np.array([proc_error(r, s) for r, s in zip(recs, pickle.load(open(f, 'rb')))])
    d = e - base
    print(f'knee {knee}: median {np.median(e):.3f} mean {e.mean():.3f}; paired median {np.median(d):+.3f}, better {(d < -0.01).sum()} worse {(d > 0.01).sum()}', flush=True)

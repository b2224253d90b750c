"""Can the image choose the focal length when depth moves with it (a "dolly": the face keeps its size in the
image, only its perspective changes)? docs/photometric.md, "A dolly". From cached post-PRDL states of default,
each face's focal is multiplied by k (the head moved along the optical axis until the face's centroid is k
times as deep, so the centroid keeps its image position and scale: fitter.optimize.dolly) and the photometric stages run at that fixed focal. Per face it prints the
shape error and the last stage's weighted energies at each k, so a choice by energy can be scored against the
truth. With ``free RATE`` the photometric stages free log_focal instead, with the schedule's dolly (Adam rate
RATE at 64 px, half at 128; focal prior 1), and it prints the error and the focal they end at.
usage: dollyexp.py clips|wild [k,k,...]        dollyexp.py clips|wild free RATE"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from photexp import MODEL, np, prdl_states, prepare_synthetic, proc_error, run
from allexp import preset_for, without_256
from clipfocalexp import clip, clip_recs
from fitter.evidence import Evidence
from fitter.energy.base import TermContext
from fitter.optimize.dolly import dolly_translation
from fitter.optimize.fit import build_terms, focal_guess, stage_weight
from fitter.optimize.schedule import evaluate
from fitter.scene import Scene


def dolly(state, k):
    """The state seen through a focal k times longer from k times further away (about the face's centroid)."""
    s = state.detached()
    before = s.log_focal.clone()
    s.log_focal += float(np.log(k))
    dolly_translation(MODEL, s, before)
    return s


def last_energies(rec, preset, state):
    ev = Evidence.single(rec['face'], rec['size'], rec['photo'], rec['masks'], rec.get('exif'))
    ctx = TermContext(MODEL, ev, preset, [focal_guess(rec['size'], preset, rec.get('exif'))])
    terms, _ = build_terms(ctx)
    st = preset['stages'][-1]
    weights = {n: stage_weight(st, n) for n in terms if stage_weight(st, n)}
    for n in weights:
        terms[n].configure(st)
        terms[n].initialise(Scene(MODEL, state))
    return evaluate(MODEL, state, terms, weights)


def main():
    which = sys.argv[1]
    free = len(sys.argv) > 2 and sys.argv[2] == 'free'
    ks = [] if free else [float(v) for v in (sys.argv[2] if len(sys.argv) > 2 else '0.6,0.8,1.0,1.25').split(',')]
    if which == 'clips':
        recs = clip_recs()
        truth_f = {s: clip(s).case(0).focal for s in (0, 1)}
        true_focal = [truth_f[int(r['name'][4])] for r in recs]
        key = 'S25clip'
    else:
        from fitter.synth.cases import sample_case
        recs = prepare_synthetic(50, 0, 'wild')
        true_focal = [sample_case(MODEL, int(r['name'][4:]), 0, 512, appearance='wild').focal for r in recs]
        key = 'S26wild'
    preset = without_256(preset_for({}))
    pp = prdl_states(recs, preset, key)
    for r, (st, _), tf in zip(recs, pp, true_focal):
        row = {'name': r['name'], 'true_focal': round(float(tf), 1), 'guess': round(float(st.log_focal.exp()[0]), 1)}
        if free:
            p = without_256(preset_for({}))
            for s in p['stages']:
                if s['name'].startswith('photometric'):
                    s['free'] = list(s['free']) + ['log_focal']
                    s['dolly'] = True
                    s['lr'] = dict(s['lr'], log_focal=float(sys.argv[3]) * (1.0 if s['name'].endswith('64') else 0.5))
                    s['weights'] = dict(s['weights'], focal_prior=1.0)
            final = run(r, p, stages_from='photometric-64', start_state=st)[0]
            row.update(err=round(proc_error(r, final), 3), focal=round(float(final.log_focal.exp()[0]), 1))
        for k in ks:
            final = run(r, preset, stages_from='photometric-64', start_state=dolly(st, k))[0]
            e = last_energies(r, preset, final)
            row[str(k)] = {'err': round(proc_error(r, final), 3), 'energy': {n: round(v, 4) for n, v in e.items()}}
        print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()

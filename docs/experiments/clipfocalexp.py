"""Why the background cost hurts the synthetic clips (docs/photometric.md, "Why: the focal length"): 20 clean clip
frames (bench video seeds 0 and 1, every 5th frame, 256 px), default with its turn weights, guarded.
usage: clipfocalexp.py cost 0.5            photometric stages from cached post-PRDL states at that background cost
       clipfocalexp.py freefocal 0.01      ... at the shipped cost with log_focal freed there (Adam rate; /2 at 128)
       clipfocalexp.py truefocal 0.5       the whole schedule given the clip's true focal length, at that cost"""
import json, pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import CACHE, MODEL, np, prdl_states, proc_error, run
from allexp import preset_for
from fitter.bench.video import observe_rendered
from fitter.io import LoadedImage
from fitter.observe import segment_faces
from fitter.synth.clips import render_clip, sample_clip


def clip(seed):
    return sample_clip(MODEL, seed, fps=25, duration=2.0, size=256, appearance='clean')


def clip_recs():
    out = []
    for seed in (0, 1):
        f = CACHE / f'clip_{seed}.pkl'
        if not f.exists():
            c, recs = clip(seed), []
            for k, r in enumerate(render_clip(MODEL, c)):
                if k % 5:
                    continue
                face, _, _ = observe_rendered(r.image, c.case(k), MODEL, r, f'<clip {seed}:{k}>')
                if face is not None:
                    recs.append({'name': f'clip{seed}_{k}', 'seed': seed, 'truth': r.camera_vertices, 'size': (256, 256),
                                 'photo': r.image.astype(np.float32) / 255.0, 'face': face,
                                 'masks': segment_faces(LoadedImage.from_array(r.image), [face], cache=False)[0]})
            pickle.dump(recs, open(f, 'wb'))
        out += pickle.load(open(f, 'rb'))
    return out


def main():
    mode, value = sys.argv[1], float(sys.argv[2])
    recs = clip_recs()
    finals = []
    if mode == 'truefocal':
        focal = {s: clip(s).case(0).focal for s in (0, 1)}
        for r in recs:
            p = preset_for({'top': {'camera': {'focal_px': float(focal[int(r['name'][4])])},
                                    'focal_prior': {'log_sigma': 0.01}, 'photometric': {'background_cost': value}}})
            finals.append(run(r, p)[0])
    else:
        pp = prdl_states(recs, preset_for({}), 'S25clip')
        p = preset_for({'top': {'photometric': {'background_cost': value if mode == 'cost' else 0.5}}})
        if mode == 'freefocal':
            for s in p['stages']:
                if s['name'].startswith('photometric'):
                    s['free'] = list(s['free']) + ['log_focal']
                    s['lr'] = dict(s['lr'], log_focal=value * (1.0 if s['name'].endswith('64') else 0.5))
                    s['weights'] = dict(s['weights'], focal_prior=1.0)
        finals = [run(r, p, stages_from='photometric-64', start_state=st)[0] for r, (st, _) in zip(recs, pp)]
    errors = [proc_error(r, s) for r, s in zip(recs, finals)]
    print(mode, value, 'n', len(errors), 'median %.3f (mean %.3f)' % (np.median(errors), np.mean(errors)),
          'focal median %.0f px' % np.median([float(s.log_focal.exp()[0]) for s in finals]),
          json.dumps([round(float(e), 2) for e in errors]), flush=True)


if __name__ == '__main__':
    main()

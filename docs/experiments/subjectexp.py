"""Unordered photos of one person (`facefit fit --subject DIR`): is one identity from N photos better than the
photos' own fits, and how much should N independent photos count against the prior ([video] averaged_power)?

Each subject: one identity drawn N(0, 1), shown in N wild renders that differ in everything else (pose,
expression, camera, light, skin, occluders, background: the wild cases of seed 1000 + subject, indices 0..N-1,
with their identity replaced). Every render is detected, fitted alone (the photo pipeline) and all of them
together as one subject (fitter.optimize.subject). Detections and single fits are cached in
$FACEFIT_EXP_CACHE/subjects. Prints, per subject, the identity error (mm, Procrustes of the neutral face region)
of the subject fit, the median of the single fits and the error of their averaged neutral faces.
usage: subjectexp.py PRESET SUBJECTS PHOTOS [POWER ...]      e.g. subjectexp.py fast 0,1,2 6 1.0 0.5"""
import copy, json, pickle, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import CACHE, MODEL, REGION, np
from fitter.bench.video import frame_source, identity_error, observe_rendered
from fitter.evidence import Evidence, FrameEvidence
from fitter.metrics import MM_PER_CM, procrustes_error
from fitter.model.morphable import neutral_face
from fitter.optimize.fit import fit_face, uses_term
from fitter.optimize.presets import load_preset
from fitter.optimize.subject import fit_sequence
from fitter.synth.cases import render_case, sample_case

SIZE = 512
HERE = CACHE / 'subjects'
HERE.mkdir(parents=True, exist_ok=True)


def subject_photos(subject: int, photos: int):
    f = HERE / f'subject{subject}_{photos}.pkl'
    if f.exists():
        return pickle.load(open(f, 'rb'))
    seed = 1000 + subject
    identity = np.random.default_rng([seed, 7]).standard_normal(MODEL.num_identity).astype(np.float32)
    out = []
    for k in range(photos):
        case = sample_case(MODEL, k, seed, SIZE, appearance='wild', identity=identity)
        r = render_case(MODEL, case)
        face, _, sharp = observe_rendered(r.image, case, MODEL, r, f'<subject {subject}:{k}>')
        out.append({'image': r.image, 'face': face, 'sharp': sharp, 'yaw': case.yaw_deg})
    rec = (identity, out)
    pickle.dump(rec, open(f, 'wb'))
    return rec


def single_fits(name: str, preset: dict, subject: int, identity, photos):
    f = HERE / f'single_{name}_{subject}_{len(photos)}.pkl'
    if f.exists():
        return pickle.load(open(f, 'rb'))
    ids = []
    for k, p in enumerate(photos):
        if p['face'] is None:
            continue
        ev = Evidence([FrameEvidence(p['face'], (SIZE, SIZE))])
        src = frame_source([p['image']], ev, preset)
        fit = fit_face(MODEL, p['face'], (SIZE, SIZE), preset, masks=src.masks(0) if uses_term(preset, 'prdl') else None,
                       photo=src.photo(0))
        ids.append(fit.state.identity.detach().numpy().copy())
    pickle.dump(ids, open(f, 'wb'))
    return ids


def main():
    name, subjects, n = sys.argv[1], [int(s) for s in sys.argv[2].split(',')], int(sys.argv[3])
    powers = [float(p) for p in sys.argv[4:]] or [1.0]
    for s in subjects:
        identity, photos = subject_photos(s, n)
        base = load_preset(name)
        singles = single_fits(name, base, s, identity, photos)
        errs = [identity_error(MODEL, i, identity, REGION) for i in singles]
        avg = np.mean([neutral_face(MODEL, i, REGION) for i in singles], 0)
        avg_err = procrustes_error(avg, neutral_face(MODEL, identity, REGION)) * MM_PER_CM
        mean_face = identity_error(MODEL, np.zeros_like(identity), identity, REGION)
        line = {'subject': s, 'detected': len(singles), 'yaw': [round(p['yaw']) for p in photos],
                'single': [round(e, 3) for e in errs], 'single_median': round(float(np.median(errs)), 3),
                'single_averaged': round(float(avg_err), 3), 'mean_face': round(float(mean_face), 3)}
        frames = [p for p in photos if p['face'] is not None]
        for power in powers:
            preset = copy.deepcopy(base)
            preset['video']['averaged_power'] = power
            ev = Evidence([FrameEvidence(p['face'], (SIZE, SIZE), sharpness=p['sharp']) for p in frames])
            t = time.perf_counter()
            fit = fit_sequence(MODEL, ev, preset, source=frame_source([p['image'] for p in frames], ev, preset))
            line[f'subject_p{power}'] = round(identity_error(MODEL, fit.state.identity.detach().numpy(), identity, REGION), 3)
            line[f'seconds_p{power}'] = round(time.perf_counter() - t, 1)
        print(name, json.dumps(line), flush=True)


if __name__ == '__main__':
    main()

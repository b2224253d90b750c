"""Photometric-stage experiments: cache (wild/clean synthetic or real) cases up to the PRDL stage, then run
only the photometric stages under different configs. Ad hoc research scripts behind the variant tables of
docs/photometric.md and docs/prdl.md (not part of the package, not tested); see README.md here."""
import json, pickle, sys, time, os
from pathlib import Path
import numpy as np, torch
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / 'shared'
sys.path.insert(0, str(REPO))
from fitter.model import load_ict
from fitter.optimize.presets import load_preset, merge
from fitter.optimize.fit import initial_state, build_terms, focal_guess, size_displacement, stage_weight, _landmark_term
from fitter.optimize.schedule import run_stage
from fitter.optimize.quality import measure, Guard, GEOMETRY, restore_geometry
from fitter.energy.base import TermContext
from fitter.evidence import Evidence
from fitter.scene import Scene
from fitter.metrics import procrustes_error

CACHE = Path(os.environ.get('FACEFIT_EXP_CACHE', Path.home() / '.cache' / 'facefit' / 'experiments'))
CACHE.mkdir(parents=True, exist_ok=True)
MODEL = load_ict()
REGION = MODEL.topology.region('face')


def prepare_synthetic(n, seed, appearance, without=()):
    """The first ``n`` cases of ``seed`` rendered, detected and segmented (cached); ``without`` leaves named wild
    effects out (fitter.synth.wild.sample_wild), every other effect as it was."""
    from fitter.synth.cases import sample_case, render_case
    from fitter.io import LoadedImage
    from fitter.observe import observe_image, segment_faces
    from fitter.bench.synthetic import PreparedCase
    out = []
    tag = f"_without_{'+'.join(sorted(without))}" if without else ''
    for i in range(n):
        f = CACHE / f'{appearance}_{seed}_{i}{tag}.pkl'
        if f.exists():
            out.append(pickle.load(open(f, 'rb'))); continue
        case = sample_case(MODEL, i, seed, 512, appearance=appearance, without=tuple(without))
        r = render_case(MODEL, case)
        img = LoadedImage.from_array(r.image, path=f'<{appearance} {seed}:{i}>')
        obs = observe_image(img, cache=False)
        rec = {'name': f'{appearance}{i}', 'truth': r.camera_vertices, 'size': case.image_size, 'photo': r.image.astype(np.float32) / 255.0}
        if obs.faces:
            from fitter.bench.synthetic import match_face
            face = match_face(PreparedCase(case, r, obs, 0.0), MODEL)
            if face is not None:
                rec['face'] = face
                rec['masks'] = segment_faces(img, [face], cache=False)[0]
        CACHE.mkdir(exist_ok=True, parents=True)
        pickle.dump(rec, open(f, 'wb'))
        out.append(rec)
    return [r for r in out if 'face' in r]


def prepare_real(paths):
    from fitter.io import load_image
    from fitter.observe import observe_image, segment_faces
    out = []
    for p in paths:
        f = CACHE / f'real_{Path(p).stem}.pkl'
        if f.exists():
            out.extend(pickle.load(open(f, 'rb'))); continue
        img = load_image(p)
        obs = observe_image(img, cache=False)
        masks = segment_faces(img, obs.faces, cache=False) if obs.faces else []
        recs = [{'name': f'{Path(p).stem}_{k}', 'size': img.size, 'photo': img.rgb_float, 'face': face, 'masks': m,
                 'exif': img.exif_focal_35mm} for k, (face, m) in enumerate(zip(obs.faces, masks))]
        pickle.dump(recs, open(f, 'wb'))
        out.extend(recs)
    return out


def run(rec, preset, stages_from=None, start_state=None, guard=True):
    """Run the preset's stages (optionally only those after `stages_from`), return (state, quality, fit_terms)."""
    ev = Evidence.single(rec['face'], rec['size'], rec['photo'], rec['masks'], rec.get('exif'))
    focal = focal_guess(rec['size'], preset, rec.get('exif'))
    state = initial_state(MODEL, ev, preset, focal) if start_state is None else start_state.detached()
    ctx = TermContext(MODEL, ev, preset, [focal])
    terms, _ = build_terms(ctx)
    lm = terms.get('landmarks') or _landmark_term(MODEL, ev, preset)
    crops = [f.crop(preset['crop']['size'], preset['crop']['margin']) for f in ev.frames]
    g = Guard.from_preset(preset); g.enabled = guard
    before = measure(MODEL, state, ev, lm, crops, {})
    q = {'init': before}
    init = set()
    stages = preset['stages']
    if stages_from:
        names = [s['name'] for s in stages]
        stages = stages[names.index(stages_from):]
    for st in stages:
        size_displacement(state, st)
        active = {n: t for n, t in terms.items() if stage_weight(st, n)}
        for n, t in active.items():
            t.configure(st)
            if n not in init:
                t.initialise(Scene(MODEL, state)); init.add(n)
        snap = {n: getattr(state, n).detach().clone() for n in GEOMETRY}
        run_stage(MODEL, state, st, terms, preset['optimizer'])
        after = measure(MODEL, state, ev, lm, crops, active)
        reason = g.check(st, before, after)
        if reason:
            restore_geometry(state, snap)
            after = dict(measure(MODEL, state, ev, lm, crops, {}), reverted=reason)
        q[st['name']] = after
        before = after
    return state, q


def proc_error(rec, state):
    with torch.no_grad():
        cam = Scene(MODEL, state).camera_vertices()[0].numpy()
    return procrustes_error(cam[REGION], rec['truth'][REGION]) * 10


def fast_stages(keep=('rigid', 'landmarks')):
    """fast with its turn weights, only the stages named in ``keep`` (default: the landmark stages)."""
    from fitter.optimize.fit import with_turn_weights
    p = load_preset('fast')
    p['stages'] = [with_turn_weights(s, p) for s in p['stages'] if s['name'] in keep]
    return p


def print_wild_errors(name, preset, n=50, seed=0):
    """Run ``preset`` unguarded on the first ``n`` wild cases of ``seed``; print the Procrustes median, mean and
    every face's error (the line the landmark-stage probes compare)."""
    errs = [proc_error(rec, run(rec, preset, guard=False)[0]) for rec in prepare_synthetic(n, seed, 'wild')]
    print(name, 'n', len(errs), 'median %.3f mean %.3f' % (np.median(errs), np.mean(errs)),
          json.dumps([round(float(e), 3) for e in errs]), flush=True)


def prdl_states(recs, preset='default', key=None):
    """Post-PRDL states (rigid, landmarks and prdl stages, unguarded) of ``preset`` (a name or a dict), cached
    under ``key`` (default: the preset's name)."""
    if isinstance(preset, str):
        key, preset = key or preset, load_preset(preset)
    pre = dict(preset); pre['stages'] = [s for s in preset['stages'] if s['name'] in ('rigid', 'landmarks', 'prdl')]
    out = []
    for rec in recs:
        f = CACHE / f"pp_{key}_{rec['name']}.pkl"
        if f.exists():
            out.append(pickle.load(open(f, 'rb'))); continue
        state, q = run(rec, pre, guard=False)
        pickle.dump((state, q), open(f, 'wb'))
        out.append((state, q))
    return out

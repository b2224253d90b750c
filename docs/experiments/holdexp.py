"""Hold the identity, in the photometric stages only, along directions the shading cannot determine (probe behind
"The spread's shape, by principal components" in docs/photometric.md): the identity change from the stage's start
(the post-PRDL identity) costs ``HOLD * <change, u>^2`` along each unit direction u (coefficient space) given:
- ``relief``: the identity closest (least squares over the face region) to scaling the mean face's depth relief,
- ``jaw``: the identity closest to the jawOpen blendshape's displacement (the identity imitating the open jaw).
Derived from the model, not from any fit. usage: holdexp.py grid|wild HOLD DIRS (e.g. 30 relief,jaw)"""
import sys, json, time, pickle
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import *
import fitter.energy.identity_prior as IP


def directions(names):
    B = MODEL.identity_basis.detach().cpu().numpy().reshape(MODEL.num_identity, -1, 3)[:, REGION].reshape(MODEL.num_identity, -1)
    mean = MODEL.mean.detach().cpu().numpy()[REGION]
    out = []
    for name in names:
        if name == 'relief':
            target = np.zeros_like(mean); target[:, 2] = mean[:, 2] - mean[:, 2].mean()
        elif name == 'jaw':
            k = list(MODEL.expression_names).index('jawOpen')
            target = MODEL.expression_basis[k].detach().cpu().numpy().reshape(-1, 3)[REGION]
        else:
            raise SystemExit(f'unknown direction {name}')
        c, *_ = np.linalg.lstsq(B.T, target.reshape(-1), rcond=None)
        fit = (B.T @ c).reshape(-1)
        print(f'{name}: the identity basis reproduces {1 - ((fit - target.reshape(-1))**2).sum() / (target**2).sum():.2f} of it', flush=True)
        out.append(c / np.linalg.norm(c))
    u = np.stack(out)
    q, _ = np.linalg.qr(u.T)  # orthonormal
    return torch.as_tensor(q.T, dtype=torch.float32)


def install(hold, dirs):
    plain_call, plain_init = IP.IdentityPrior.__call__, IP.IdentityPrior.initialise

    def initialise(self, scene):
        plain_init(self, scene)
        self.start = scene.state.identity.detach().clone()

    def call(self, scene):
        e = plain_call(self, scene)
        if hold > 0 and getattr(self, 'start', None) is not None and self.ramp >= 0:
            d = (scene.state.identity - self.start).reshape(-1) @ dirs.T.to(scene.state.identity)
            e = e + IP.spread_over_frames(hold * (d**2).sum(), scene.state.num_frames)
        return e
    IP.IdentityPrior.__call__, IP.IdentityPrior.initialise = call, initialise


if __name__ == '__main__':
    which, hold, names = sys.argv[1], float(sys.argv[2]), sys.argv[3].split(',')
    install(hold, directions(names))
    preset = load_preset('default')
    tag = f'hold{hold:g}_{"+".join(names)}'
    t = time.time()
    if which == 'grid':
        from gridexp import prepare_grid, speaker_faces
        from fitter.bench.consistency import consistency
        recs = prepare_grid()
        states = prdl_states(recs, 'default', key='GS')
        finals = [run(r, preset, stages_from='photometric-64', start_state=st) for r, (st, q) in zip(recs, states)]
        c = consistency(speaker_faces(recs, [s.identity for s, _, *rest in finals]))
        print(tag, 'GRID', json.dumps({k: round(v, 3) for k, v in c.items() if isinstance(v, float)}),
              'nme %.4f' % np.median([q[list(q)[-1]]['nme_mean'] for _, q, *rest in finals]), flush=True)
    elif which == 'wild':
        recs = prepare_synthetic(50, 0, 'wild')
        states = prdl_states(recs, 'default', key='S30')
        errs = []
        for r, (st, q) in zip(recs, states):
            s, *_ = run(r, preset, stages_from='photometric-64', start_state=st)
            errs.append(proc_error(r, s))
        base = [proc_error(r, s) for r, s in zip(recs, pickle.load(open(CACHE / 'final_S30.pkl', 'rb')))]
        d = np.array(errs) - np.array(base)
        print(tag, f'wild median {np.median(errs):.3f} (mean {np.mean(errs):.3f}); shipped {np.median(base):.3f} ({np.mean(base):.3f});'
              f' paired {np.median(d):+.3f}, better {(d < -1e-4).sum()} / worse {(d > 1e-4).sum()}', flush=True)
    print(f'{(time.time() - t) / 60:.1f} min', flush=True)

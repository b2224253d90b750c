"""The shape of default's frame-to-frame identity spread on GRID (16 frames, 8 a speaker, each fitted as a photo;
gridspread.py's cached post-PRDL and final states): principal components of the frames' aligned neutral faces
about their speaker's mean, how much of the between-speaker vector lies on each, and what each follows frame by
frame (focal, depth, pitch, light, the fitted jawOpen, the detected lip gap; a component's sign is arbitrary, so
only the size of a correlation means anything). Behind "The spread's shape, by principal components" in
docs/photometric.md.
usage: gridmodes.py    (needs gridspread.py's cached states: run it first)"""
import sys, pickle
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gridexp import *
from fitter.bench.consistency import aligned_mean
from fitter.metrics import similarity_align

recs = prepare_grid()
post = prdl_states(recs, 'default', key='GS')
finals = pickle.load(open(CACHE / 'grid_final_GS.pkl', 'rb'))
JAW = list(MODEL.expression_names).index('jawOpen')


def components(tag, sts, shown=3):
    """PCA of the within-speaker deviations (model units, cm); returns the frames' scores on the first ``shown``."""
    people = speaker_faces(recs, [s.identity for s, _ in sts])
    devs, means = [], {}
    for name, faces in people.items():
        means[name], aligned = aligned_mean(faces)
        devs += [a - means[name] for a in aligned]
    D = np.stack([d.reshape(-1) for d in devs])
    n = D.shape[1] // 3
    U, S, Vt = np.linalg.svd(D, full_matrices=False)
    share = S**2 / (S**2).sum()
    a, b = means
    between = (similarity_align(means[a], means[b]) - means[b]).reshape(-1)
    print(f'{tag}: within {10 * np.sqrt((D**2).sum(1).mean() / n):.3f} mm, between {10 * np.sqrt((between**2).sum() / n):.3f} mm')
    print('  within variance on PCs 1-6:', np.round(share[:6], 3), ' between vector on them:',
          np.round((Vt[:6] @ between)**2 / (between**2).sum(), 3))
    depth = np.mean(list(means.values()), 0)[:, 2]
    for k in range(shown):
        v = Vt[k].reshape(n, 3)
        print(f'  PC{k + 1}: depth share {(v[:, 2]**2).sum():.2f}, '
              f'correlation of its depth shift with the face depth {np.corrcoef(v[:, 2], depth - depth.mean())[0, 1]:+.2f}')
    return D @ Vt[:shown].T


def per_speaker_centred(x):
    x = np.asarray(x, float).copy()
    x[:8] -= x[:8].mean(); x[8:] -= x[8:].mean()
    return x


components('post-PRDL', post)
scores = components('final', finals)
states = [s for s, _ in finals]
lip_gap = []
for r in recs:  # MediaPipe 13 / 14: the inner lips' midpoints
    p = np.asarray(r['face'].landmarks, float)
    lip_gap.append(np.linalg.norm(p[13] - p[14]) / np.sqrt(np.prod(p.max(0) - p.min(0))))
follows = {
    'log focal': [float(s.log_focal[0]) for s in states],
    'depth (tz)': [float(s.translation[0, 2]) for s in states],
    'pitch': [float(s.rotation[0, 0]) for s in states],
    'yaw': [float(s.rotation[0, 1]) for s in states],
    'light sh1/sh0': [float(s.sh[0, 1].mean() / s.sh[0, 0].mean()) for s in states],
    'light sh2/sh0': [float(s.sh[0, 2].mean() / s.sh[0, 0].mean()) for s in states],
    'fitted jawOpen': [float(s.expression[0, JAW]) for s in states],
    'detected lip gap': lip_gap,
}
print(f"fitted jawOpen against the detected lip gap: {np.corrcoef(per_speaker_centred(follows['fitted jawOpen']), per_speaker_centred(lip_gap))[0, 1]:+.2f}")
print('correlation with the final PCs 1-3, each speaker centred (16 frames):')
for name, values in follows.items():
    c = [np.corrcoef(per_speaker_centred(values), scores[:, k])[0, 1] for k in range(scores.shape[1])]
    print(f'  {name:17s}' + ' '.join(f'{x:+.2f}' for x in c))

"""Where default's frame-to-frame identity spread lives on GRID (8 frames a clip, each fitted as a photo): the
post-PRDL and final states (cached), per part label and, outside the parts, by height; within and between per
region as `facefit bench consistency` defines them. Behind "Where GRID's spread lives" in docs/photometric.md."""
import sys, pickle
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from gridexp import *
from fitter.bench.consistency import aligned_mean
from fitter.metrics import similarity_align
from fitter.observe import PART_NAMES

recs = prepare_grid()
states = prdl_states(recs, 'default', key='GS')
f = CACHE / 'grid_final_GS.pkl'
if f.exists():
    finals = pickle.load(open(f, 'rb'))
else:
    preset = load_preset('default')
    finals = [run(r, preset, stages_from='photometric-64', start_state=st) for r, (st, q) in zip(recs, states)]
    pickle.dump(finals, open(f, 'wb'))
labels = MODEL.topology.vertex_labels['parts'][REGION]
mean0 = np.asarray(MODEL.mean)[REGION]


def per_vertex(sts):
    """Per-vertex mean squared within-person distance and between-means distance (mm^2)."""
    people = speaker_faces(recs, [s.identity for s, _ in sts])
    means, w = {}, []
    for name, faces in people.items():
        mean, al = aligned_mean(faces)
        means[name] = mean
        w.append(np.mean([((a - mean) ** 2).sum(-1) for a in al], 0))
    a, b = list(means)
    return np.mean(w, 0) * 100, ((similarity_align(means[a], means[b]) - means[b]) ** 2).sum(-1) * 100


for tag, sts in (('post-PRDL', states), ('final', finals)):
    w, b = per_vertex(sts)
    print(tag, 'within %.3f between %.3f mm' % (np.sqrt(w.mean()), np.sqrt(b.mean())))
    for k in np.unique(labels):
        m = labels == k
        print('  %-10s n %5d within %.3f between %.3f' % ('none' if k == 0 else PART_NAMES[k - 1], m.sum(),
                                                          np.sqrt(w[m].mean()), np.sqrt(b[m].mean())))
    for lo, hi in ((-99, -5), (-5, 0), (0, 5), (5, 99)):  # outside the parts, by height (cm, model frame)
        m = (labels == 0) & (mean0[:, 1] >= lo) & (mean0[:, 1] < hi)
        print('    none, y in [%g, %g) n %d within %.3f between %.3f' % (lo, hi, m.sum(), np.sqrt(w[m].mean()),
                                                                        np.sqrt(b[m].mean())))
    j = MODEL.expression_names.index('jawOpen')
    print('  jawOpen', [round(float(s.expression.detach().reshape(-1)[j]), 2) for s, _ in sts])

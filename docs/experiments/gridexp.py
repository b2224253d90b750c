"""GRID identity-consistency experiments: photometric variants from cached post-PRDL states."""
import sys, json, copy, time; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import *
from fitter.bench.consistency import person_frames, neutral_face, consistency

def prepare_grid():
    from fitter.observe import observe_image, segment_faces
    out = []
    for clip in ('bbaf2n', 'lbax4n'):
        f = CACHE / f'grid_{clip}.pkl'
        if f.exists():
            out.extend(pickle.load(open(f, 'rb'))); continue
        recs = []
        for k, img in enumerate(person_frames(SHARED / 'data' / 'videos' / f'{clip}.mpg', 8)):
            obs = observe_image(img, largest=True, cache=False)
            face = obs.faces[0]
            recs.append({'name': f'{clip}_{k}', 'person': clip, 'size': img.size, 'photo': img.rgb_float,
                         'face': face, 'masks': segment_faces(img, [face], cache=False)[0]})
        pickle.dump(recs, open(f, 'wb'))
        out.extend(recs)
    return out

def speaker_faces(recs, identities):
    """Each speaker's neutral faces (the input of consistency()), from one fitted identity per record."""
    people = {}
    for r, identity in zip(recs, identities):
        people.setdefault(r['person'], []).append(neutral_face(MODEL, identity, REGION))
    return people

def variant(edits, top=None):
    p = load_preset('default')
    if top: p = merge(p, top)
    for s in p['stages']:
        if s['name'].startswith('photometric'):
            for k, v in edits.items():
                if k == 'weights': s['weights'].update(v)
                elif k == 'lr': s['lr'] = {a: b * v.get(a, 1.0) for a, b in s['lr'].items()}
                else: s[k] = v
    return p

if __name__ == '__main__':
    recs = prepare_grid()
    states = prdl_states(recs)
    base = speaker_faces(recs, [st.identity for st, _ in states])
    print('post-prdl', json.dumps({k: round(v, 3) for k, v in consistency(base).items() if isinstance(v, float)}), flush=True)
    V = json.loads(sys.argv[1])
    for name, spec in V.items():
        preset = variant(spec.get('edits', {}), spec.get('top'))
        t = time.time()
        identities, nmes = [], []
        for r, (st, q) in zip(recs, states):
            state, qq = run(r, preset, stages_from='photometric-64', start_state=st, guard=spec.get('guard', True))
            identities.append(state.identity)
            nmes.append(qq[list(qq)[-1]]['nme_mean'])
        c = consistency(speaker_faces(recs, identities))
        print(name, json.dumps({k: round(v, 3) for k, v in c.items() if isinstance(v, float)}), 'nme %.4f' % np.median(nmes),
              'sec %.1f' % ((time.time() - t) / len(recs)), flush=True)

"""Does a folder of photos show one person? How far one photo's own identity lies from the others' (the check a
`--subject` photo folder could make, as clips compare their shots: fitter.optimize.shot_identity).

Each photo is fitted alone with the preset's landmark-only photo stages (cheap, blind to light); its neutral face
is compared, after a similarity alignment, with the neutral face of the mean identity of the folder's other
photos (leave one out). Same person: synthetic subjects (one identity in N wild renders that differ in pose,
expression, camera, light, skin, occluders, background: subjectexp.py's subjects) and the GRID clips' frames.
Other people: one photo of another subject (or a real photo of shared/data/images) put into a subject's folder.
Prints the distances (mm) of each photo of one person, and of each intruder, from the rest.
Identity source: the preset's landmark-only photo stages (default), the same with one round each (`short`), or
the closed-form start (`start`).
usage: photoidexp.py PRESET SUBJECTS PHOTOS [stages|short|start]        e.g. photoidexp.py fast 0,1,2,3 6 start"""
import pickle, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cv2
from photexp import CACHE, MODEL, SHARED, np
from subjectexp import SIZE, subject_photos
import torch
from fitter.io import LoadedImage, load_image
from fitter.observe import observe_image
from fitter.evidence import Evidence
from fitter.optimize.fit import fit_face, focal_guess, initial_state
from fitter.optimize.presets import load_preset
from fitter.optimize.shot_identity import identity_distances_mm, landmark_stages

HERE = CACHE / 'photoid'
SOURCE = sys.argv[4] if len(sys.argv) > 4 else 'stages'  # 'stages' (landmark-only photo stages), 'short', 'start'
HERE.mkdir(parents=True, exist_ok=True)


def identity_of(preset: dict, face, size, tag: str) -> np.ndarray:
    f = HERE / f'{tag}.pkl'
    if f.exists():
        return pickle.load(open(f, 'rb'))
    if SOURCE == 'start':  # the closed-form start (fitter.optimize.init): free, every subject computes it
        evidence = Evidence.single(face, size)
        state = initial_state(MODEL, evidence, preset, focal_guess(evidence.frames[0].image_size, preset))
        ident = state.identity.detach().numpy().copy()
    else:
        ident = fit_face(MODEL, face, size, preset).state.identity.detach().numpy().copy()
    pickle.dump(ident, open(f, 'wb'))
    return ident


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return identity_distances_mm(MODEL, [torch.as_tensor(b), torch.as_tensor(a)])[1]


def leave_one_out(ids: list[np.ndarray]) -> list[float]:
    return [distance(ids[k], np.mean([x for j, x in enumerate(ids) if j != k], 0)) for k in range(len(ids))]


def grid_identities(name: str, preset: dict, tag: str, frames: int = 8) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SHARED / 'data' / 'videos' / f'{name}.mpg'))
    images = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        images.append(np.ascontiguousarray(frame[:, :, ::-1]))
    out = []
    for k in np.linspace(0, len(images) - 1, frames).round().astype(int):
        obs = observe_image(LoadedImage.from_array(images[k]), largest=True, cache=False)
        out.append(identity_of(preset, obs.faces[0], images[k].shape[:2], f'{tag}_{name}_{k}'))
    return out


def all_identities(preset: dict, tag: str, subjects: list[int], photos: int) -> tuple[dict, dict]:
    """The identities of each synthetic subject's photos and of each GRID clip's frames (groups of one person),
    and of the real photos' largest faces."""
    groups = {}
    for s in subjects:
        _, shots = subject_photos(s, photos)
        groups[f'subject{s}'] = [identity_of(preset, p['face'], (SIZE, SIZE), f'{tag}_s{s}_{k}')
                                 for k, p in enumerate(shots) if p['face'] is not None]
    for clip in ('bbaf2n', 'lbax4n'):
        groups[clip] = grid_identities(clip, preset, tag)
    reals = {}
    for path in sorted((SHARED / 'data' / 'images').iterdir()):
        image = load_image(path)
        obs = observe_image(image, largest=True, cache=False)
        if obs.faces:
            reals[path.name] = identity_of(preset, obs.faces[0], image.size, f'{tag}_real_{path.stem}')
    return groups, reals


def main():
    name, subjects, photos = sys.argv[1], [int(s) for s in sys.argv[2].split(',')], int(sys.argv[3])
    base = load_preset(name)
    preset = dict(base, stages=landmark_stages(base['stages']))
    if SOURCE == 'short':  # the same stages, one round each (a third of the iterations)
        preset['stages'] = [dict(st, rounds=1) for st in preset['stages']]
    tag = f'{name}' if SOURCE == 'stages' else f'{name}_{SOURCE}'
    groups, reals = all_identities(preset, tag, subjects, photos)
    same = []
    print('same person: each photo from the mean of the others (mm)')
    for g, ids in groups.items():
        d = leave_one_out(ids)
        same += d
        print(f'  {g:10s} n={len(ids)}  ' + ' '.join(f'{v:.2f}' for v in d))
    print('intruders: one photo of another person added to a group, from the mean of the group (mm)')
    intruders = []
    for g, ids in groups.items():
        mean = np.mean(ids, 0)
        others = [x for h, xs in groups.items() if h != g for x in xs[:2]] + list(reals.values())
        d = [distance(x, mean) for x in others]
        intruders += d
        print(f'  into {g:10s} median {np.median(d):.2f}, min {np.min(d):.2f}, 10th pct {np.percentile(d, 10):.2f}')
    same, intruders = np.array(same), np.array(intruders)
    print(f'same person: median {np.median(same):.2f}, 90th pct {np.percentile(same, 90):.2f}, max {same.max():.2f}')
    for limit in (0.6, 0.8, 1.0, 1.2, 1.5):
        print(f'  limit {limit}: same flagged {np.mean(same > limit):.0%}, '
              f'intruders caught {np.mean(intruders > limit):.0%}')


if __name__ == '__main__':
    main()

"""Group photos in a `--subject` photo folder: how often fitter.optimize.photo_faces picks the folder's person.

Simulated from photoidexp.py's identities (run it first with the same preset; its cache is read, nothing is
fitted here): one photo k of a group is imagined as a group photo that also shows another person x (another
group's photo or a real photo). The rule keeps the largest face unless it lies further than LIMIT mm from the
mean of the folder's other photos, and then takes the nearest face. Counted over every (k, x):
- the stranger is the largest face: the person is fitted when d(x) > LIMIT and d(k) < d(x) (before: never);
- the person is the largest face: the stranger is fitted by mistake when d(k) > LIMIT and d(x) < d(k) (before:
  never).
It ignores that a face in a group photo is often smaller than in a portrait (read less well), and the rule's
repeats (a photo's choice changes the others' mean).
usage: groupexp.py PRESET SUBJECTS PHOTOS        e.g. groupexp.py fast 0,1,2,3 6"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import np
from photoidexp import all_identities, distance
from fitter.optimize.presets import load_preset
from fitter.optimize.shot_identity import landmark_stages

LIMIT = 0.8  # [video] photo_identity_mm


def main():
    name, subjects, photos = sys.argv[1], [int(s) for s in sys.argv[2].split(',')], int(sys.argv[3])
    base = load_preset(name)
    preset = dict(base, stages=landmark_stages(base['stages']))
    groups, named = all_identities(preset, name, subjects, photos)
    reals = list(named.values())
    found, mistaken, n = 0, 0, 0
    for g, ids in groups.items():
        strangers = [x for h, xs in groups.items() if h != g for x in xs[:2]] + reals
        g_found = g_mistaken = 0
        for k in range(len(ids)):
            mean = np.mean([x for j, x in enumerate(ids) if j != k], 0)
            mine = distance(ids[k], mean)
            for x in strangers:
                theirs = distance(x, mean)
                g_found += theirs > LIMIT and mine < theirs
                g_mistaken += mine > LIMIT and theirs < mine
        count = len(ids) * len(strangers)
        print(f'{g:10s} {count:4d} pairs: person fitted when the stranger is larger {g_found / count:.0%}, '
              f'stranger fitted when the person is larger {g_mistaken / count:.0%}')
        found, mistaken, n = found + g_found, mistaken + g_mistaken, n + count
    print(f'all {n} pairs: person fitted when the stranger is larger {found / n:.0%} (before 0 %), '
          f'stranger fitted when the person is larger {mistaken / n:.0%} (before 0 %)')


if __name__ == '__main__':
    main()

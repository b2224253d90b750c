"""A preset's landmark/PRDL stages on wild renders (seed 0, cases 0-39; unguarded): per-case Procrustes errors.
Behind the stage-length table of docs/fitting.md; see README.md here.
usage: stagesexp.py NAME PRESET STAGES [EDITS]
  stagesexp.py fast_before fast rigid,landmarks,prdl '{"rigid": {"iterations": 15}, "landmarks": {"iterations": 40, "rounds": 2}}'
  stagesexp.py fast_now fast rigid,landmarks,prdl
  stagesexp.py landmarks default rigid,landmarks
EDITS: per stage name, keys to set ("weights" merges)."""
import copy, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photexp import load_preset, np, prepare_synthetic, proc_error, run

name, preset_name, stages = sys.argv[1], sys.argv[2], sys.argv[3].split(',')
edits = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
preset = load_preset(preset_name)
preset['stages'] = [copy.deepcopy(s) for s in preset['stages'] if s['name'] in stages]
for s in preset['stages']:
    for k, v in edits.get(s['name'], {}).items():
        if k == 'weights':
            s['weights'].update(v)
        else:
            s[k] = v
errors = [proc_error(rec, run(rec, preset, guard=False)[0]) for rec in prepare_synthetic(40, 0, 'wild')]
print(name, 'n', len(errors), 'median %.3f mean %.3f' % (np.median(errors), np.mean(errors)),
      json.dumps([round(float(e), 2) for e in errors]), flush=True)

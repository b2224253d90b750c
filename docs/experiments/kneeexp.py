"""The photometric term's Geman-McClure knee (robust_delta, units of sigma; 3 shipped) and other [photometric]
settings: default's photometric stages from the same post-PRDL states (wild seed 0, 47 faces, guarded), paired with
the shipped settings' finals (docs/photometric.md, "How robust the photometric loss is"); the states are
truthenergyexp.py's. An argument is a knee, or KEY=VALUE for another [photometric] setting.
usage: kneeexp.py KNEE|KEY=VALUE [...]      (about 9 minutes a value on 2 cores)"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from allexp import preset_for
from truthenergyexp import paired_variant

for arg in sys.argv[1:]:
    key, value = arg.split('=') if '=' in arg else ('robust_delta', arg)
    tag = f'knee{float(value)}' if key == 'robust_delta' else f'{key}{float(value)}'
    paired_variant(f'{key} {float(value)}', preset_for({'top': {'photometric': {key: float(value)}}}), tag)

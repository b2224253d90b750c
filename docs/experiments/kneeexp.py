"""The photometric term's Geman-McClure knee (robust_delta, units of sigma; 3 shipped): default's photometric
stages from the same post-PRDL states (wild seed 0, 47 faces, guarded), paired with the shipped knee's finals
(docs/photometric.md, "How robust the photometric loss is"); the states are truthenergyexp.py's.
usage: kneeexp.py KNEE [KNEE ...]       (about 9 minutes a knee on 2 cores)"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from allexp import preset_for
from truthenergyexp import paired_variant

for knee in [float(x) for x in sys.argv[1:]]:
    paired_variant(f'knee {knee}', preset_for({'top': {'photometric': {'robust_delta': knee}}}), f'knee{knee}')

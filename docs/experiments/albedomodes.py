"""How many Laplacian albedo modes the photometric stages should have ([albedo] modes, 80 shipped): default's
photometric stages from the cached post-PRDL states (wild seed 0, 47 faces, guarded), paired with the same stages
at 80 modes run by the same code (docs/photometric.md, "How many albedo modes"). A count above the shipped asset's
80 builds a basis of that many modes (assets/build/build_albedo_basis.py --modes N) into the cache and reads it
in place of the asset. ``base`` re-runs the shipped setting (the pairing's reference).
usage: albedomodes.py base|N [...]      (about 9 minutes a value on 2 cores)"""
import subprocess, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from allexp import preset_for
from truthenergyexp import CACHE, paired_variant
import fitter.model.albedo as albedo

REPO = Path(__file__).resolve().parents[2]


def use_basis(modes: int) -> None:
    """Read a basis of ``modes`` modes instead of the shipped asset (built once into the cache)."""
    built = CACHE / f'albedo_basis_{modes}.npz'
    if not built.exists():
        subprocess.run([sys.executable, str(REPO / 'assets' / 'build' / 'build_albedo_basis.py'), '--modes',
                        str(modes), '--out', str(built)], check=True)
    shipped = albedo.asset_path
    albedo.asset_path = lambda name: built if name == 'ict_albedo_basis.npz' else shipped(name)
    albedo.albedo_basis.cache_clear()


for arg in sys.argv[1:]:
    if arg == 'base':
        paired_variant('modes 80 (re-run)', preset_for({}), 'albedo80')
        continue
    modes = int(arg)
    if modes > 80:
        use_basis(modes)
    paired_variant(f'albedo modes {modes}', preset_for({'top': {'albedo': {'modes': modes}}}), f'albedo{modes}')

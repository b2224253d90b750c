"""sparsityexp.py with the sparsity cost on some blendshapes only (shell patterns over the model's expression
names; a probe: the shipped setting weighs every blendshape).
usage: sparsitymouth.py NAME SPEC '{"patterns": ["jaw*", "mouth*"]}'   (NAME and SPEC as sparsityexp.py)"""
import sys, fnmatch, runpy, json
from pathlib import Path
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
import torch
from fitter.energy import expression_prior as ep
from fitter.model import load_ict
names = load_ict().expression_names
pats = json.loads(sys.argv[3])['patterns']
mask = torch.tensor([any(fnmatch.fnmatch(n, p) for p in pats) for n in names], dtype=torch.float32)
print('sparse on', int(mask.sum()), 'of', len(names), flush=True)
shipped = ep.ExpressionPrior.__call__


def call(self, scene):
    """The shipped prior without its sparsity, plus the sparsity cost on the masked blendshapes only."""
    weight, self.sparsity = self.sparsity, 0.0
    try:
        energy = shipped(self, scene)
    finally:
        self.sparsity = weight
    e = scene.state.expression
    sparse = weight * (((e.square() + ep.SMOOTH**2).sqrt() - ep.SMOOTH) * mask).sum(-1) / self.sigma
    return energy + scene.state.spread_instants(sparse)


ep.ExpressionPrior.__call__ = call
sys.argv = [sys.argv[0], sys.argv[1], sys.argv[2]]
runpy.run_path(str(HERE / 'sparsityexp.py'), run_name='__main__')

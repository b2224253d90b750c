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
def call(self, scene):
    e = scene.state.expression
    energy = ((e / self.sigma) ** 2).sum(-1)
    if self.sparsity:
        energy = energy + self.sparsity * (((e.square() + ep.SMOOTH**2).sqrt() - ep.SMOOTH) * mask).sum(-1) / self.sigma
    if self.bounds is not None:
        low, high = self.bounds
        outside = torch.relu(low - e) ** 2 + torch.relu(e - high) ** 2
        energy = energy + self.bound_weight * outside.sum(-1)
    return scene.state.spread_instants(energy)
ep.ExpressionPrior.__call__ = call
sys.argv = [sys.argv[0], sys.argv[1], sys.argv[2]]
runpy.run_path(str(HERE / 'sparsityexp.py'), run_name='__main__')

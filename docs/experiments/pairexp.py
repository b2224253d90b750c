"""Pair two sparsityexp.py outputs case by case: usage pairexp.py BASE.json NEW.json."""
import json, sys, numpy as np
a = json.load(open(sys.argv[1]))['per']; b = json.load(open(sys.argv[2]))['per']
for k in a:
    if k in b and len(a[k]) == len(b[k]):
        x, y = np.array(a[k]), np.array(b[k]); d = y - x
        print('%-14s base %.4f new %.4f  paired median %+.4f mean %+.4f  up %d down %d' % (k, np.median(x), np.median(y), np.median(d), d.mean(), (d > 1e-3).sum(), (d < -1e-3).sum()))

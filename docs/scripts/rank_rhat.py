"""Rank-normalised split R-hat, bulk and folded (Vehtari et al. 2021), of every parameter of an
`infer fit` samples file over the first N draws of each chain: which half of R-hat a round missed by.

    python docs/scripts/rank_rhat.py FIT/artifacts/samples.h5 300

Needs numpy and h5py. Prints the six worst max(bulk, folded) and the two halves of each.
"""
import sys
from statistics import NormalDist

import h5py
import numpy as np

NOT_PARAMETERS = ("accept_prob", "divergent", "logp", "n_steps", "step_size")


def rank_normal(x):
    flat = x.ravel()
    r = np.empty(flat.size)
    r[np.argsort(flat, kind="stable")] = np.arange(1, flat.size + 1)
    inv = NormalDist().inv_cdf
    return np.array([inv(v) for v in (r - 3 / 8) / (flat.size + 1 / 4)]).reshape(x.shape)


def split_rhat(x):
    h = x.shape[1] // 2
    s = np.concatenate([x[:, :h], x[:, h : 2 * h]])
    w = s.var(axis=1, ddof=1).mean()
    b = h * s.mean(axis=1).var(ddof=1)
    return np.sqrt(((h - 1) / h * w + b / h) / w)


def main(path, n):
    rows = []
    with h5py.File(path) as f:
        for key in f.keys():
            if key in NOT_PARAMETERS:
                continue
            a = f[key][()]
            cols = [(key, a[:, :n])] if a.ndim == 2 else [(f"{key}[{j}]", a[:, :n, j]) for j in range(a.shape[2])]
            for name, x in cols:
                bulk = split_rhat(rank_normal(x))
                folded = split_rhat(rank_normal(np.abs(x - np.median(x))))
                rows.append((max(bulk, folded), bulk, folded, name))
    rows.sort(reverse=True)
    for worst, bulk, folded, name in rows[:6]:
        print(f"{name:16s} R-hat {worst:.4f}  bulk {bulk:.4f}  folded {folded:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""Multi-round self-correction as a two-state chain with constant CL and CS (Yang et al.,
arXiv 2412.19513; the convergence analysis of arXiv 2508.16456): Acc_t = Acc_{t-1}·CL +
(1 − Acc_{t-1})·CS converges at rate alpha = CL − CS to the fixed point Upp = CS/(1 − CL + CS).

    >>> from sclab.metrics.convergence import fit_convergence
    >>> {k: round(v, 4) for k, v in fit_convergence(0.9, 0.2, 0.5).items()}
    {'alpha': 0.7, 'upp': 0.6667}
"""
from __future__ import annotations

import numpy as np

from sclab.metrics.correction import ratio


def fit_convergence(cl: float, cs: float, acc0: float) -> dict:
    """alpha = CL - CS and the fixed point upp = CS/(1 - CL + CS) (NaN when CL = 1 and CS = 0,
    where accuracy never moves). acc0 is checked to lie in [0, 1]."""
    for name, v in (("cl", cl), ("cs", cs), ("acc0", acc0)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name} must lie in [0, 1] (got {v})")
    return {"alpha": float(cl - cs), "upp": float(ratio(cs, 1 - cl + cs))}


def predict_rounds(acc0: float, cl: float, cs: float, rounds: int) -> list[float]:
    """[Acc_0, Acc_1, ..., Acc_rounds] from the closed form Acc_t = Upp − alpha^t·(Upp − Acc_0).

    >>> [round(a, 3) for a in predict_rounds(0.5, 0.9, 0.2, 2)]
    [0.5, 0.55, 0.585]
    """
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0 (got {rounds})")
    fit = fit_convergence(cl, cs, acc0)
    if np.isnan(fit["upp"]):
        return [float(acc0)] * (rounds + 1)
    return [float(fit["upp"] - fit["alpha"] ** t * (fit["upp"] - acc0)) for t in range(rounds + 1)]

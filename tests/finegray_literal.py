"""crr's definitions computed literally, with explicit risk sets: the O(n^2) reference of the Fine-Gray tests.

One implementation for fixed and time-varying covariates: ``covariates_at(t)`` gives every row's
covariates at failure time ``t`` (a constant matrix for a fixed-effect model; ``[X, X2 * tf(t)]``
for crr's ``cov2`` / ``tf``). Cause 1 is of interest, 2 competing, 0 censored.
"""

from __future__ import annotations

import numpy as np


def literal_crr(time, cause, covariates_at, beta):
    """Log pseudo-likelihood, score, information and the sandwich's meat at ``beta``."""
    fail, comp, cens = cause == 1, cause == 2, cause == 0
    n, p = time.size, np.asarray(beta).size
    u_times = np.unique(time)
    Y = np.array([(time >= u).sum() for u in u_times])
    c = np.array([(cens & (time == u)).sum() for u in u_times])

    def g_minus(t):  # censoring KM at t * (1 - 100 eps), as crr: G(t-), but G(0) at t = 0
        return np.prod((1 - c / Y)[u_times < t]) if t > 0 else np.prod((1 - c / Y)[u_times <= 0])

    def weights(t):  # weight of every row in the risk set at failure time t
        w = (time >= t).astype(float)
        early = comp & (time < t)
        w[early] = g_minus(t) / np.array([g_minus(tj) for tj in time[early]])
        return w

    loglik, score, info = 0.0, np.zeros(p), np.zeros((p, p))
    s0, xbar, w_at, z_at = {}, {}, {}, {}
    for i in np.flatnonzero(fail):
        z = covariates_at(time[i])
        w = weights(time[i]) * np.exp(z @ beta)
        s0[i], xbar[i], w_at[i], z_at[i] = w.sum(), (w @ z) / w.sum(), w, z
        loglik += z[i] @ beta - np.log(s0[i])
        score += z[i] - xbar[i]
        dev = z - xbar[i]
        info += (dev.T * w) @ dev / s0[i]
    eta = np.zeros((n, p))
    for i in range(n):
        if fail[i]:
            eta[i] += z_at[i][i] - xbar[i]
        for j in s0:
            eta[i] -= w_at[j][i] * (z_at[j][i] - xbar[j]) / s0[j]
    psi = np.zeros((n, p))
    for k, u in enumerate(u_times):
        if c[k] == 0:
            continue
        q = np.zeros(p)
        for j in s0:
            if time[j] >= u:
                for h in np.flatnonzero(comp & (time < u)):
                    q += w_at[j][h] * (z_at[j][h] - xbar[j]) / s0[j]
        for i in range(n):
            psi[i] += q / Y[k] * ((cens[i] and time[i] == u) - (time[i] >= u) * c[k] / Y[k])
    resid = eta + psi
    return loglik, score, info, resid.T @ resid

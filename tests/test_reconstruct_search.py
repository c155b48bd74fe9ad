"""The reconstruction's optimiser: batched annealing over latents, and the typicality penalty."""

from __future__ import annotations

import numpy as np
import pytest

from failpattern.simulate.reconstruct.search import (
    AD_CRITICAL_10,
    anderson_darling_uniform,
    anneal,
    cluster_limit,
    largest_cluster,
    typicality_penalty,
)


def test_anderson_darling_by_hand_and_its_10_percent_critical_value():
    x = np.array([0.1, 0.4, 0.7])
    # A² = -n - (1/n) sum (2i-1) [ln x_i + ln(1 - x_{n+1-i})], computed term by term
    by_hand = -3 - (1 * (np.log(0.1) + np.log(0.3)) + 3 * (np.log(0.4) + np.log(0.6))
                    + 5 * (np.log(0.7) + np.log(0.9))) / 3
    assert anderson_darling_uniform(x) == pytest.approx(by_hand, rel=1e-12)
    u = np.random.default_rng(0).random((8000, 52))
    assert (anderson_darling_uniform(u) > AD_CRITICAL_10).mean() == pytest.approx(0.10, abs=0.012)


def test_largest_cluster_by_hand_and_the_cluster_limit_holds_for_uniform_samples():
    assert largest_cluster(np.array([0.1, 0.12, 0.5, 0.51, 0.515, 0.9]), 0.02) == 3
    assert largest_cluster(np.array([[0.1, 0.2], [0.3, 0.305]]), 0.01).tolist() == [1, 2]
    for n in (20, 52, 93):
        u = np.random.default_rng(n).random((3000, n))
        assert (largest_cluster(u, 1.0 / n) > cluster_limit(n)).mean() <= 0.05


def test_typicality_penalty_is_zero_for_typical_latents_and_large_for_a_cluster():
    rng = np.random.default_rng(1)
    typical = {"pfs1": rng.random(52)}
    used = {"pfs1": np.ones(52, bool)}
    clustered = {"pfs1": np.r_[rng.random(40), np.full(12, 0.5)]}
    assert typicality_penalty(clustered, used) > 1.0
    # unused patients do not count
    assert typicality_penalty(clustered, {"pfs1": np.r_[np.ones(40, bool), np.zeros(12, bool)]}) == \
        typicality_penalty({"pfs1": clustered["pfs1"][:40]}, {"pfs1": np.ones(40, bool)})
    assert typicality_penalty(typical, used) < 1.0


def _toy():
    target = np.linspace(0.1, 0.9, 20)

    def loss(c):
        return np.abs(c["u"] - target).sum(axis=-1)

    def propose(rng, state, k):
        out = np.repeat(state["u"][None], k, axis=0)
        who = rng.integers(0, out.shape[1], k)
        out[np.arange(k), who] = rng.random(k)
        return {"u": out}

    return loss, propose


def test_anneal_minimises_and_is_reproducible_for_a_seed():
    loss, propose = _toy()
    start = {"u": np.full(20, 0.5)}
    a = anneal(start, loss, propose, np.random.default_rng(7), steps=400, batch=16, t0=0.5, t1=1e-3)
    b = anneal(start, loss, propose, np.random.default_rng(7), steps=400, batch=16, t0=0.5, t1=1e-3)
    assert a.loss < 0.25 * loss({"u": start["u"][None]})[0]
    assert np.all(np.diff(a.history) <= 0)
    assert a.loss == b.loss and np.array_equal(a.state["u"], b.state["u"])
    assert a.evaluations == 1 + 400 * 16
    assert start["u"][0] == 0.5  # the caller's state is not modified


def test_anneal_stops_when_the_loss_is_reached():
    loss, propose = _toy()
    r = anneal({"u": np.full(20, 0.5)}, loss, propose, np.random.default_rng(8), steps=5000, batch=16, stop=1.0)
    assert r.loss <= 1.0 and r.history.size < 5000


def test_improving_moves_on_different_patients_are_merged():
    from failpattern.simulate.reconstruct.search import _merge

    current = {"u": np.zeros(4)}
    cand = {"u": np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 2.0], [0, 0, 5.0, 0]])}
    losses = np.array([1.0, 2.0, 1.5, 9.0])
    merged = _merge(current, cand, losses, 3.0, 0)
    # the best (0), then 1 (another patient); 2 touches patient 0 again; 3 did not improve
    assert np.array_equal(merged["u"], [1.0, 1.0, 0, 0])
    assert _merge(current, cand, losses, 1.0, 0) is None  # nothing else improved

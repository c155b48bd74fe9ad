"""Times of a reconstructed cohort from latent uniforms: the model's distributions, the clinical rules by construction."""

from __future__ import annotations

import numpy as np
import pytest

from failpattern.simulate.generate import DPM, pfs1_inv
from failpattern.simulate.model import DEFAULT_PARAMS as P
from failpattern.simulate.reconstruct.times import (
    LATENTS,
    RESTAGE_DAYS,
    latent_for_days,
    pfs1_cdf,
    pfs1_quantile,
    times_from_latents,
)
from failpattern.study import design_for, load_study

DESIGN = design_for(load_study("ni2019"))


def _skeleton(rng, shape):
    brain = rng.random(shape) < 0.4
    ev1 = rng.random(shape) < 0.56
    ev2 = ev1 & (rng.random(shape) < 0.5)
    return {"brain": brain.astype(int), "brain_rt": (brain & (rng.random(shape) < 0.3)).astype(int),
            "burden": np.where(brain, 1 + (rng.random(shape) < 0.5), 0), "non_adeno": (rng.random(shape) < 0.05) * 1,
            "organs": rng.integers(1, 6, shape), "response": rng.integers(0, 4, shape),
            "rt": (rng.random(shape) < 0.45) * 1, "prior_lines": rng.integers(0, 3, shape),
            "salvage": (ev1 & (rng.random(shape) < 0.3)) * 1, "cbpd": (ev1 & (rng.random(shape) < 0.6)) * 1,
            "pfs1_event": ev1 * 1, "pfs2_event": ev2 * 1, "os_event": (ev2 & (rng.random(shape) < 0.4)) * 1}


def test_pfs1_quantile_is_the_models_inverse_and_the_cdf_inverts_it():
    rng = np.random.default_rng(1)
    s = _skeleton(rng, (2000,))
    u = rng.random(2000)
    t = pfs1_quantile(P, u, s)
    assert np.allclose(t, pfs1_inv(P, u, s), rtol=1e-12)
    assert np.allclose(pfs1_cdf(P, t, s), u, atol=1e-10)


def test_times_obey_the_clinical_rules_whatever_the_latents():
    rng = np.random.default_rng(2)
    shape = (200, 93)
    s = _skeleton(rng, shape)
    # extreme latents too: 0 and nearly 1
    u = {k: rng.choice([0.0, 1 - 1e-15, 0.5, *rng.random(5)], size=shape) for k in LATENTS}
    t = times_from_latents(P, DESIGN, s, u)
    span = int((DESIGN.enrolment[1] - DESIGN.enrolment[0]).astype(int))
    cutoff = int((DESIGN.cutoff - DESIGN.enrolment[0]).astype(int))
    ev1, ev2, died = (s[k] == 1 for k in ("pfs1_event", "pfs2_event", "os_event"))
    responded = s["response"] != 3
    assert np.all((t["start_d"] >= 0) & (t["start_d"] <= span))
    follow = cutoff - t["start_d"]
    first_scan = 7 * DESIGN.scan_weeks[0]
    assert np.all(t["pfs1_d"][ev1 & responded] >= first_scan)
    lo, hi = (round(m * DPM) for m in P.pd_scan)
    assert np.all((t["pfs1_d"][ev1 & ~responded] >= lo) & (t["pfs1_d"][ev1 & ~responded] <= hi))
    assert np.all(t["pfs1_d"][ev1] < follow[ev1])  # a progression before the cut-off, never on it
    assert np.all(t["pfs1_d"][~ev1] == follow[~ev1])  # censored at the cut-off
    assert np.all(t["pfs2_d"][ev2] >= RESTAGE_DAYS)
    assert np.all((t["pfs1_d"] + t["pfs2_d"])[ev2] < follow[ev2])
    assert np.all((t["pfs1_d"] + t["pfs2_d"])[ev1 & ~ev2] == follow[ev1 & ~ev2])
    assert np.all(t["pfs2_d"][~ev1] == 0)
    assert np.all((t["death_d"][died] >= (t["pfs1_d"] + t["pfs2_d"])[died]) & (t["death_d"][died] < follow[died]))
    assert np.all(t["death_d"][~died] == -1)
    assert np.all(t["lag_d"] >= 0) and np.all(t["os_d"] >= t["lag_d"])


def test_uniform_latents_give_the_models_conditional_distribution():
    """With uniform latents, a progressing responder's PFS1 follows the model truncated to [first scan, room)."""
    rng = np.random.default_rng(3)
    n = 40_000
    s = {k: np.zeros(n, int) for k in ("brain", "brain_rt", "burden", "non_adeno", "rt", "prior_lines", "salvage",
                                        "cbpd", "pfs2_event", "os_event")}
    s.update(organs=np.ones(n, int), response=np.ones(n, int), pfs1_event=np.ones(n, int))
    u = {k: rng.random(n) for k in LATENTS}
    u["start"] = np.zeros(n)  # everyone starts on the first day: the same truncation for all
    t = times_from_latents(P, DESIGN, s, u)
    months = t["pfs1_d"] / DPM
    first = 7 * DESIGN.scan_weeks[0] / DPM
    room = (int((DESIGN.cutoff - DESIGN.enrolment[0]).astype(int)) - 0.5) / DPM
    lo, hi = pfs1_cdf(P, first, s)[0], pfs1_cdf(P, room, s)[0]
    for q in (0.1, 0.5, 0.9):
        expected = pfs1_quantile(P, np.array([lo + q * (hi - lo)]), {k: v[:1] for k, v in s.items()})[0]
        assert np.quantile(months, q) == pytest.approx(expected, rel=0.03)


def test_same_latents_same_times():
    rng = np.random.default_rng(4)
    s = _skeleton(rng, (3, 93))
    u = {k: rng.random((3, 93)) for k in LATENTS}
    a, b = times_from_latents(P, DESIGN, s, u), times_from_latents(P, DESIGN, s, u)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_latent_for_days_places_the_event_where_asked():
    rng = np.random.default_rng(5)
    s = _skeleton(rng, (93,))
    u = {k: rng.random(93) for k in LATENTS}
    base = times_from_latents(P, DESIGN, s, u)
    for name in ("pfs1", "pfs2"):
        who = np.flatnonzero((s["pfs1_event"] == 1) & (s["response"] != 3) if name == "pfs1" else s["pfs2_event"] == 1)
        for i in who[:5]:
            days = 0.5 * base[f"{name}_d"][i] + 60  # inside the window, away from its ends
            v = latent_for_days(P, DESIGN, s, u, name, i, days)
            moved = times_from_latents(P, DESIGN, s, {**u, name: np.where(np.arange(93) == i, v, u[name])})
            assert abs(moved[f"{name}_d"][i] - days) <= 2, (name, i)
            others = np.arange(93) != i
            assert np.array_equal(moved[f"{name}_d"][others], base[f"{name}_d"][others])

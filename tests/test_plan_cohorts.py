"""Seeded cohort generator for the analysis-plan tests (and the generator's own tests).

Why here and not ``failpattern.simulate``: the plan tests need small cohorts in
the cohort format whose every column is consistent (the loader checks that),
with knobs the tests use (size, missing values, dropped optional columns).
The real simulator is built separately; these cohorts carry no claim of
realism, only of validity. Everything random goes through the passed
``np.random.Generator``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import load_cohort

__all__ = ["make_cohort", "make_frame"]


def make_frame(n: int = 93, rng: np.random.Generator | None = None, *, missing: float = 0.0
               ) -> pd.DataFrame:
    """A cohort-format DataFrame of ``n`` patients with every column.

    Parameters
    ----------
    n : int
        Patients.
    rng : numpy.random.Generator
        Source of randomness (default seed 2019).
    missing : float
        Probability that each optional baseline value is blanked (``NaN``), to
        exercise exclusions.
    """
    rng = np.random.default_rng(2019) if rng is None else rng
    u = rng.random
    age = np.clip(np.round(rng.normal(50, 10, n)), 22, 85)
    sex = np.where(u(n) < 0.59, "male", "female")
    adeno = u(n) < 0.9
    histology = np.where(adeno, "adenocarcinoma", "other")
    ecog = rng.choice([0, 1, 2], n, p=[0.3, 0.64, 0.06])
    size = np.round(rng.lognormal(np.log(3.4), 0.45, n), 1)
    size = np.clip(size, 0.5, 15.0)
    t_stage = rng.choice(["T1", "T2", "T3", "T4"], n, p=[0.25, 0.31, 0.2, 0.24])
    n_stage = rng.choice(["N0", "N1", "N2", "N3"], n, p=[0.1, 0.15, 0.4, 0.35])
    organs = rng.integers(1, 6, n)
    lesions = rng.integers(1, 16, n)
    lung, liver, adrenal, bone = (u(n) < p for p in (0.26, 0.16, 0.14, 0.35))
    brain = u(n) < 0.38
    burden = np.where(brain, np.where(u(n) < 0.43, "oligo", "multiple"), None)
    prior_lines = rng.choice([0, 1, 2], n, p=[0.6, 0.3, 0.1])
    srs = brain & (burden == "oligo") & (u(n) < 0.3)
    wbrt = brain & ~srs & (u(n) < 0.2)
    brain_rt = srs | wbrt
    thoracic, bone_rt, adrenal_rt = u(n) < 0.1, bone & (u(n) < 0.15), adrenal & (u(n) < 0.08)
    prior_rt = brain_rt | thoracic | bone_rt | adrenal_rt
    response = rng.choice(["CR", "PR", "SD", "PD"], n, p=[0.02, 0.7, 0.24, 0.04])

    # PFS1: progression (hazard depends on covariates) vs death vs censoring, whole months
    lin = 0.5 * (~adeno) + 0.5 * (organs >= 3) - 0.4 * np.isin(response, ["CR", "PR"]) + 0.3 * brain
    t_pd = rng.exponential(15.0 * np.exp(-lin))
    t_death = rng.exponential(150.0, n)
    t_cens = rng.uniform(2.0, 50.0, n)
    pfs1 = np.maximum(np.round(np.minimum(np.minimum(t_pd, t_death), t_cens), 1), 0.1)
    progressed = (t_pd <= t_death) & (t_pd <= t_cens)
    died_first = (t_death < t_pd) & (t_death <= t_cens)
    p_of = np.where(brain | (size >= 3.5), 0.6, 0.4)
    draw = u(n)
    pattern = np.where(draw < p_of, "OF", np.where(draw < p_of + 0.25, "ODF", "DF"))
    pattern = np.where(progressed, pattern, np.where(died_first, "death", None))
    pfs1_event = (progressed | died_first).astype(int)

    def after(values):  # a value only for patients with a first progression
        return np.where(progressed, values, None)

    location = after(rng.choice(["primary", "metastasis", "both"], n, p=[0.17, 0.63, 0.2]))
    fail = {s: after((u(n) < p).astype(int)) for s, p in (
        ("lung", 0.33), ("liver", 0.06), ("bone", 0.12), ("adrenal", 0.02), ("regional_ln", 0.12),
        ("distant_ln", 0.08), ("other", 0.06))}
    fail_brain = progressed & (u(n) < np.where(brain, 0.7, 0.3))
    fail["brain"] = after(fail_brain.astype(int))
    brain_type = np.where(fail_brain, np.where(u(n) < np.where(brain, 0.85, 0.3), "multiple", "oligo"),
                          None)
    eligible = progressed & (u(n) < 0.67)
    elig_tech = np.where(eligible, rng.choice(["WBRT", "SRS", "SBRT"], n, p=[0.55, 0.28, 0.17]), None)
    salvage = eligible & (u(n) < 0.55)
    salvage_tech = np.where(salvage, elig_tech, None)
    cbpd = progressed & (u(n) < 0.67)
    nxt = np.where(cbpd, "crizotinib",
                   rng.choice(["best_supportive_care", "next_gen_alk_tki", "chemotherapy"], n, p=[0.5, 0.3, 0.2]))
    any_rt = prior_rt | salvage | (u(n) < 0.05)

    # PFS2 and OS
    t2 = rng.exponential(np.where(salvage | cbpd, 11.0, 5.0))
    c2 = rng.uniform(1.0, 30.0, n)
    pfs2 = np.maximum(np.round(np.minimum(t2, c2), 1), 0.1)
    pfs2_event = (t2 <= c2).astype(int)
    gap = np.round(rng.exponential(3.0, n), 1)
    extra = np.round(rng.exponential(8.0, n), 1)
    dies_later = progressed & (pfs2_event == 1) & (u(n) < 0.4)
    os_months = np.where(died_first | ~progressed, gap + pfs1, gap + pfs1 + pfs2 + np.where(dies_later, extra, 0))
    os_event = (died_first | dies_later).astype(int)

    frame = pd.DataFrame({
        "patient_id": [f"P{i + 1:03d}" for i in range(n)],
        "pfs1_months": pfs1, "pfs1_event": pfs1_event, "failure_pattern": pattern,
        "pfs2_months": np.where(progressed, pfs2, np.nan),
        "pfs2_event": np.where(progressed, pfs2_event, np.nan),
        "os_months": np.round(os_months, 1), "os_event": os_event,
        "age_years": age, "sex": sex, "histology": histology, "ecog": ecog,
        "primary_tumor_size_cm": size, "t_stage": t_stage, "n_stage": n_stage,
        "n_metastatic_organs": organs, "n_metastatic_lesions": lesions,
        "lung_mets": lung.astype(int), "liver_mets": liver.astype(int), "brain_mets": brain.astype(int),
        "adrenal_mets": adrenal.astype(int), "bone_mets": bone.astype(int), "brain_mets_burden": burden,
        "prior_lines": prior_lines, "prior_rt": prior_rt.astype(int),
        "prior_brain_rt": brain_rt.astype(int), "prior_brain_srs": srs.astype(int),
        "prior_wbrt": wbrt.astype(int), "prior_thoracic_rt": thoracic.astype(int),
        "prior_bone_rt": bone_rt.astype(int), "prior_adrenal_rt": adrenal_rt.astype(int),
        "best_response": response, "initial_failure_location": location,
        **{f"fail_{s}": v for s, v in fail.items()},
        "brain_progression_type": brain_type,
        "salvage_rt_eligible": after(eligible.astype(int)), "salvage_rt_eligible_technique": elig_tech,
        "salvage_rt": after(salvage.astype(int)), "salvage_rt_technique": salvage_tech,
        "cbpd": after(cbpd.astype(int)), "next_systemic_therapy": after(nxt),
        "any_rt": any_rt.astype(int),
    })
    if missing > 0:
        for name in ("age_years", "sex", "histology", "ecog", "primary_tumor_size_cm",
                     "n_metastatic_organs", "n_metastatic_lesions", "liver_mets", "best_response"):
            frame[name] = frame[name].astype(object).where(u(n) >= missing, None)
    return frame


def make_cohort(n: int = 93, seed: int = 2019, **kw):
    """:func:`make_frame` loaded with :func:`~failpattern.cohort.load_cohort`."""
    return load_cohort(make_frame(n, np.random.default_rng(seed), **kw))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_cohorts_load(seed):
    cohort = make_cohort(93, seed)
    assert cohort.n_patients == 93
    assert all(cohort.supports(a) for a in cohort.analyses()["analysis"])


def test_missing_values_become_exclusions():
    cohort = make_cohort(93, 5, missing=0.1)
    _, excluded = cohort.rows_for("of_predictors", columns=["age_years"])
    assert excluded and all("age_years is empty" in e.reason for e in excluded)

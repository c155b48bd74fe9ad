"""One simulated cohort (a row of a :class:`~failpattern.simulate.generate.Batch`) as a cohort-format table.

Why separate: the arrays are what the calibration and the benchmark need; the
DataFrame (every format column, nullable dtypes, dates) is built only when a cohort is
asked for, and must pass :func:`failpattern.cohort.load_cohort` unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern.cohort.schema import ALL_COLUMNS
from failpattern.simulate.generate import DPM, SITES, Batch

__all__ = ["BURDEN_LABELS", "LOCATION_LABELS", "NEXT_LABELS", "PATTERN_LABELS", "RESPONSE_LABELS",
           "TECHNIQUE_LABELS", "to_frame"]

#: Cohort-format labels of the simulator's integer codes (index = code; None = empty cell).
PATTERN_LABELS = np.array([None, "OF", "DF", "ODF"], dtype=object)
RESPONSE_LABELS = np.array(["CR", "PR", "SD", "PD"], dtype=object)
BURDEN_LABELS = np.array([None, "oligo", "multiple"], dtype=object)
TECHNIQUE_LABELS = np.array([None, "WBRT", "SRS", "SBRT"], dtype=object)
NEXT_LABELS = np.array(["crizotinib", "best_supportive_care", "next_gen_alk_tki", "chemotherapy"], dtype=object)
LOCATION_LABELS = np.array([None, "primary", "metastasis", "both"], dtype=object)
for _labels in (PATTERN_LABELS, RESPONSE_LABELS, BURDEN_LABELS, TECHNIQUE_LABELS, NEXT_LABELS, LOCATION_LABELS):
    _labels.setflags(write=False)


def _int(values, keep=None):
    """Nullable integers (empty where ``keep`` is false), built without a Series round trip."""
    v = np.asarray(values, dtype=np.int64)
    mask = np.zeros(v.shape, bool) if keep is None else ~np.asarray(keep, bool)
    return pd.arrays.IntegerArray(v, mask)


def _date(day0, days, keep=None):
    d = (day0 + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")).astype(str).astype(object)
    if keep is not None:
        d[~np.asarray(keep, bool)] = pd.NA
    return pd.arrays.StringArray(d)


def _cat(values):
    v = np.asarray(values, dtype=object)
    v[pd.isna(v)] = pd.NA
    return pd.arrays.StringArray(v)


def to_frame(batch: Batch, i: int = 0, id_prefix: str = "SIM") -> pd.DataFrame:
    """Cohort ``i`` of ``batch`` in the cohort format (every format column, one row per patient).

    Parameters
    ----------
    batch : Batch
        Simulated cohorts.
    i : int
        Which replicate.
    id_prefix : str
        Patient ids are ``f"{id_prefix}{k:03d}"``.

    Returns
    -------
    pandas.DataFrame
        Durations in months rounded to 0.01 (days / 30.4375) and the dates they
        come from; empty cells as ``<NA>``.
    """
    g = {k: getattr(batch, k)[i] for k in ("rt", "male", "non_adeno", "ecog", "size", "t_stage", "n_stage",
                                           "organs", "lesions", "age", "prior_lines", "burden", "brain_rt",
                                           "xrt", "response", "start_d", "lag_d", "pfs1_d", "pfs1_event",
                                           "pattern", "location", "btype", "elig", "salvage", "next",
                                           "pfs2_d", "pfs2_event", "os_d", "os_event")}
    mets = {k: v[i] for k, v in batch.mets.items()}
    fail = {k: v[i] for k, v in batch.fail.items()}
    n = g["rt"].size
    prog = g["pattern"] > 0
    died = g["os_event"] == 1
    ev2 = g["pfs2_event"] == 1
    start = g["start_d"]
    day0 = batch.calendar.origin  # the date of day 0
    out = {
        "patient_id": _cat([f"{id_prefix}{k + 1:03d}" for k in range(n)]),
        "pfs1_months": np.round(g["pfs1_d"] / DPM, 2),
        "pfs1_event": _int(g["pfs1_event"]),
        "failure_pattern": _cat(PATTERN_LABELS[g["pattern"]]),
        "pfs2_months": pd.arrays.FloatingArray(np.round(g["pfs2_d"] / DPM, 2), ~prog),
        "pfs2_event": _int(g["pfs2_event"], prog),
        "os_months": np.round(g["os_d"] / DPM, 2),
        "os_event": _int(g["os_event"]),
        "diagnosis_date": _date(day0, start - g["lag_d"]),
        "crizotinib_start_date": _date(day0, start),
        "first_progression_date": _date(day0, start + g["pfs1_d"], prog),
        "second_progression_date": _date(day0, start + g["pfs1_d"] + g["pfs2_d"], ev2),
        "death_date": _date(day0, start - g["lag_d"] + g["os_d"], died),
        "last_followup_date": _date(day0, np.full(n, batch.calendar.cutoff), ~died),
        "age_years": np.round(g["age"]).astype(np.int64),
        "sex": _cat(np.where(g["male"] == 1, "male", "female")),
        "histology": _cat(np.where(g["non_adeno"] == 1, "other", "adenocarcinoma")),
        "ecog": _int(g["ecog"]),
        "primary_tumor_size_cm": np.round(g["size"], 1),
        "t_stage": _cat(np.array(["T0", "T1", "T2", "T3", "T4"], dtype=object)[g["t_stage"]]),
        "n_stage": _cat(np.array(["N0", "N1", "N2", "N3"], dtype=object)[g["n_stage"]]),
        "n_metastatic_organs": _int(g["organs"]),
        "n_metastatic_lesions": _int(g["lesions"]),
        "lung_mets": _int(mets["lung"]),
        "liver_mets": _int(mets["liver"]),
        "brain_mets": _int(mets["brain"]),
        "adrenal_mets": _int(mets["adrenal"]),
        "bone_mets": _int(mets["bone"]),
        "brain_mets_burden": _cat(BURDEN_LABELS[g["burden"]]),
        "prior_lines": _int(g["prior_lines"]),
        "prior_rt": _int((g["brain_rt"] > 0) | (g["xrt"] > 0)),
        "prior_brain_rt": _int(g["brain_rt"] > 0),
        "prior_brain_srs": _int(g["brain_rt"] == 1),
        "prior_wbrt": _int(g["brain_rt"] == 2),
        "prior_thoracic_rt": _int(np.isin(g["xrt"], (1, 4))),
        "prior_bone_rt": _int(np.isin(g["xrt"], (2, 4))),
        "prior_adrenal_rt": _int(g["xrt"] == 3),
        "best_response": _cat(RESPONSE_LABELS[g["response"]]),
        "fail_original_site": _int(np.isin(g["pattern"], (1, 3)), prog),
        "fail_new_site": _int(np.isin(g["pattern"], (2, 3)), prog),
        "initial_failure_location": _cat(LOCATION_LABELS[g["location"]]),
    }
    for s in SITES:
        out[f"fail_{s}"] = _int(fail[s], prog)
    out["brain_progression_type"] = _cat(BURDEN_LABELS[g["btype"]])
    out["salvage_rt_eligible"] = _int(g["elig"] > 0, prog)
    out["salvage_rt_eligible_technique"] = _cat(TECHNIQUE_LABELS[g["elig"]])
    out["salvage_rt"] = _int(g["salvage"] > 0, prog)
    out["salvage_rt_technique"] = _cat(TECHNIQUE_LABELS[g["salvage"]])
    out["cbpd"] = _int(g["next"] == 0, prog)
    nxt = np.where(prog, NEXT_LABELS[np.maximum(g["next"], 0)], None)
    out["next_systemic_therapy"] = _cat(nxt)
    out["any_rt"] = _int(g["rt"])
    # when treatments began (the methods audit's exposure timing), where the batch records it
    cbpd = prog & (g["next"] == 0)
    out["cbpd_months"] = pd.arrays.FloatingArray(np.zeros(n), ~cbpd)
    out["cbpd_date"] = _date(day0, start + g["pfs1_d"], cbpd)
    for name, field, zero in (("salvage_rt", "salvage_start_d", start + g["pfs1_d"]),
                              ("first_rt", "first_rt_d", start - g["lag_d"])):
        days = getattr(batch, field)
        days = np.full(n, -1) if days is None else days[i]
        given = days >= 0
        out[f"{name}_months"] = pd.arrays.FloatingArray(np.round(np.maximum(days, 0) / DPM, 2), ~given)
        out[f"{name}_date"] = _date(day0, zero + np.maximum(days, 0), given)
    return pd.DataFrame({c.name: out[c.name] for c in ALL_COLUMNS}, copy=False)

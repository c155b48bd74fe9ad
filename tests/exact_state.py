"""The covariate state of exact mode's finishing steps, rebuilt from a cohort frame.

Shared by the tests of ``_exact_polish``, ``_exact_solo`` and ``_exact_repair``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failpattern._resources import exact_float_csv_options, synthetic_path


def canonical_frame() -> pd.DataFrame:
    """The shipped exact cohort, read as the package reads it."""
    return pd.read_csv(synthetic_path("ni2019_exact.csv"), **exact_float_csv_options())


def covariate_state(f: pd.DataFrame) -> tuple[dict, dict]:
    """``(cx, st)`` as ``exact_batch`` hands them to the covariate stage."""
    cause = np.select([f.failure_pattern.eq("OF"), f.failure_pattern.isin(["DF", "ODF"])], [1, 2], 0).astype(np.int64)
    cx = {"rt": f.any_rt.to_numpy().astype(np.int64), "bbm": f.brain_mets.to_numpy() == 1,
          "prt": f.prior_rt.to_numpy() == 1, "pd": (f.best_response == "PD").to_numpy(),
          "t": f.pfs1_months.to_numpy(float), "cause": cause, "event": f.pfs1_event.to_numpy() == 1}

    def flag(a):
        return np.asarray(a).astype(np.int8)

    st = {"male": flag(f.sex == "male"), "non_adeno": flag(f.histology != "adenocarcinoma"),
          "ecog2": flag(f.ecog >= 2), "t34": flag(f.t_stage.isin(["T3", "T4"])), "n0": flag(f.n_stage == "N0"),
          "organs3": flag(f.n_metastatic_organs >= 3), "lesions6": flag(f.n_metastatic_lesions >= 6),
          **{k: flag(f[f"{k}_mets"]) for k in ("lung", "liver", "adrenal", "bone")},
          "lines": f.prior_lines.to_numpy(), "resp": f.best_response.map({"CR": 0, "PR": 1, "SD": 2, "PD": 3}).to_numpy(),
          "age": f.age_years.to_numpy(float), "size": f.primary_tumor_size_cm.to_numpy(float)}
    return cx, st

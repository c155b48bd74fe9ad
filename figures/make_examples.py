"""Example figures from simulated data: ``python figures/make_examples.py``.

Writes ``example_km.png``, ``example_cif.png`` and ``example_forest.png`` next
to this script, using only failpattern's public functions. The data are
simulated (seeded, so every run gives the same files) with sizes and rates
loosely like Ni et al. 2019 (93 patients; 11 vs 24 with baseline brain
metastases by prior brain radiotherapy; first failures OF / DF / ODF). They
are not the study's data: the curves illustrate the figures, not the paper's
results. The "published" column of the forest plot is the univariate part of
the paper's Table 3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from failpattern.plots import plot_cumulative_incidence, plot_forest, plot_km, save_figure
from failpattern.stats.cif import cumulative_incidence
from failpattern.stats.finegray import fine_gray
from failpattern.stats.km import kaplan_meier
from failpattern.stats.logrank import logrank

HERE = Path(__file__).resolve().parent
SEED = 20190314


def _censored(rng, times, follow_up=(12.0, 40.0)):
    """Observed time and event flag under uniform administrative censoring."""
    cens = rng.uniform(*follow_up, size=times.size)
    return np.minimum(times, cens).round(1), (times <= cens).astype(int)


def km_example(rng) -> None:
    """Fig. 1a-like: PFS1 by prior brain radiotherapy among patients with BBM."""
    groups = {"Prior-RT": (11, 13.5), "Non prior-RT": (24, 6.0)}
    curves, t_all, e_all, g_all = {}, [], [], []
    for label, (n, median) in groups.items():
        t, e = _censored(rng, rng.exponential(median / np.log(2), size=n))
        curves[label] = kaplan_meier(t, e, conf_type="spss")
        t_all.append(t), e_all.append(e), g_all.append(np.full(n, label))
    test = logrank(np.concatenate(t_all), np.concatenate(e_all), np.concatenate(g_all))
    fig = plot_km(curves, p_value=test, ylabel="Progression-free survival",
                  title="Simulated: PFS1 by prior brain radiotherapy (cf. Fig. 1a)")
    save_figure(fig, HERE / "example_km", formats=("png",), overwrite=True)


def cif_example(rng) -> None:
    """Fig. 2-like: cumulative incidence of OF, DF and ODF, and any progression."""
    n = 93
    latent = np.column_stack([rng.exponential(s, size=n) for s in (22.0, 45.0, 40.0)])
    first = latent.min(axis=1)
    cause = latent.argmin(axis=1) + 1
    t, e = _censored(rng, first, follow_up=(15.0, 45.0))
    cause = np.where(e == 1, cause, 0)
    result = cumulative_incidence(t, cause)
    any_event = kaplan_meier(t, (cause > 0).astype(int))
    fig = plot_cumulative_incidence(
        result, labels={1: "OF", 2: "DF", 3: "ODF"}, add_total=True, risk_table=any_event,
        title="Simulated: patterns of first failure (cf. Fig. 2)")
    save_figure(fig, HERE / "example_cif", formats=("png",), overwrite=True)


PUBLISHED = pd.DataFrame(  # Ni et al. 2019, Table 3, univariate SHR (95% CI)
    {"shr": [0.55, 0.61, 0.19, 2.74, 2.44, 3.50],
     "shr_lower": [0.26, 0.29, 0.08, 1.28, 1.14, 1.62],
     "shr_upper": [1.16, 1.26, 0.43, 5.87, 5.24, 7.54]},
    index=["Age (≤50y vs >50y)", "Sex (female vs male)",
           "Histology (non-adeno vs adeno)", "Primary tumor size (<3.5 vs ≥3.5)",
           "Metastatic organs (1–2 vs ≥3)", "Brain metastases (no vs yes)"])


def forest_example(rng) -> None:
    """Table 3-like: univariate Fine-Gray SHRs for OF, simulated vs published."""
    n = 93
    x = pd.DataFrame(rng.binomial(1, [0.5, 0.45, 0.15, 0.4, 0.5, 0.38], size=(n, 6)),
                     columns=[f"x{j}" for j in range(6)])
    log_shr = np.log(PUBLISHED["shr"].to_numpy())
    rate_of = 1 / 30.0 * np.exp(x.to_numpy() @ log_shr * 0.8)
    t_of, t_df = rng.exponential(1 / rate_of), rng.exponential(35.0, size=n)
    t, e = _censored(rng, np.minimum(t_of, t_df), follow_up=(15.0, 45.0))
    data = x.assign(time=t, cause=np.where(e == 1, np.where(t_of < t_df, 1, 2), 0))
    rows = [fine_gray(data, duration="time", cause="cause", covariates=[c],
                      variance="stata").summary for c in x.columns]
    ours = pd.concat(rows)
    ours.index = PUBLISHED.index
    fig = plot_forest(ours, published=PUBLISHED,
                      title="Simulated: predictors of original-site failure (cf. Table 3)")
    save_figure(fig, HERE / "example_forest", formats=("png",), overwrite=True)


def main() -> None:
    rng = np.random.default_rng(SEED)
    km_example(rng)
    cif_example(rng)
    forest_example(rng)


if __name__ == "__main__":
    main()

"""The loader's fast paths change nothing: same cohort, same problems, same order.

``load_cohort`` types DataFrame columns column-wise and skips the
cross-column checks when :func:`failpattern.cohort.quick.maybe_problems`
proves that none can fire. Here every cohort is loaded twice, once as
shipped and once with the quick check disabled (the full checks always
run), and the outcomes must be identical: the frame and its dtypes, or the
list of problems with their messages, lines and order. The cohorts are
simulated and then broken in ways that only cross-column rules catch (cells
copied between patients, emptied, months shifted across the tolerance).
Timings are measured in ``benchmarks/bench_study.py``, never asserted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from failpattern.cohort import CohortError, load_cohort, quick
from failpattern.cohort import load as load_module
from failpattern.simulate import simulate


def _outcome(frame):
    try:
        c = load_cohort(frame)
    except CohortError as exc:
        return "error", [(p.rule, p.message, p.line, p.patient_id, p.column, p.value) for p in exc.problems]
    except Exception as exc:  # noqa: BLE001 - a crash must at least be the same crash
        return "crash", type(exc).__name__, str(exc)
    d = c.data
    return "ok", list(d.columns), [str(t) for t in d.dtypes], d.to_csv(), c.derived, c.columns_present


def _broken(k: int) -> pd.DataFrame:
    rng = np.random.default_rng(500 + k)
    f = simulate(seed=np.random.default_rng(500 + k))
    for _ in range(1 + k % 3):
        col = f.columns[int(rng.integers(f.shape[1]))]
        i, j = (int(x) for x in rng.integers(len(f), size=2))
        f.loc[i, col] = f[col].iat[j] if rng.random() < 0.7 else pd.NA
    if k % 4 == 2:
        c = ("pfs1_months", "pfs2_months", "os_months")[k % 3]
        f[c] = (f[c] + rng.choice([0.0, 0.49, 0.51, 1.0, -0.3], size=len(f))).clip(lower=0)
    if k % 5 == 3:
        f = f.drop(columns=["pfs1_months", "failure_pattern"][: 1 + k % 2])
    return f


def test_simulated_cohorts_take_the_fast_path(monkeypatch):
    calls = []
    real = quick.maybe_problems
    monkeypatch.setattr(load_module, "maybe_problems", lambda *a: calls.append(real(*a)) or calls[-1])
    for seed in range(5):
        load_cohort(simulate(seed=seed))
    assert calls == [False] * 5


@pytest.mark.parametrize("k", range(40))
def test_fast_and_full_checks_agree(monkeypatch, k):
    frame = _broken(k)
    fast = _outcome(frame.copy())
    monkeypatch.setattr(load_module, "applies", lambda *a: False)  # always the full checks
    full = _outcome(frame.copy())
    assert fast == full


def test_empty_detail_flag_beside_a_contradicting_summary_is_reported_not_a_crash():
    frame = simulate(seed=1)
    frame.loc[0, ["prior_rt", "prior_brain_rt", "prior_brain_srs", "prior_wbrt"]] = [0, 1, pd.NA, 1]
    with pytest.raises(CohortError) as info:
        load_cohort(frame)
    flags = [p for p in info.value.problems if p.rule == "inconsistent_flags" and p.line == 2]
    assert any(p.column == "prior_rt+prior_brain_rt+prior_wbrt" for p in flags)


def test_native_columns_typed_like_text(tmp_path):
    """A DataFrame's typed columns and the same cohort read back from CSV give the same cohort."""
    frame = simulate(seed=3)
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    a, b = load_cohort(frame).data, load_cohort(path).data
    pd.testing.assert_frame_equal(a, b)

"""The fit layer (``failpattern.stats.fit``): the validated functions' results from clean arrays.

Each fit-layer function runs the kernel its public function runs, with the same
arguments, so the results must be identical (the batched Fine-Gray fitter: equal
to rounding). Arguments after the arrays are keyword-only. The analysis plan
imports the fit layer only, never a private name of ``failpattern.stats``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from failpattern.stats import fit
from failpattern.stats.contingency import contingency_test
from failpattern.stats.cox import cox
from failpattern.stats.finegray import fine_gray
from failpattern.stats.km import kaplan_meier
from failpattern.stats.logrank import logrank
from failpattern.stats.twosample import two_sample_test

SRC = Path(__file__).resolve().parents[1] / "src" / "failpattern"


def _same(a, b, rtol: float = 0.0, path: str = "result") -> None:
    """Field by field: identical (``rtol = 0``, NaN equal to NaN) or equal to ``rtol``."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), rtol, f"{path}.{f.name}")
        return
    if isinstance(a, (tuple, list)) and not isinstance(a, str):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            _same(x, y, rtol, f"{path}[{k}]")
        return
    if isinstance(a, np.ndarray) and a.dtype.kind not in "fc":
        assert np.array_equal(a, np.asarray(b)), path
        return
    if isinstance(a, (float, np.floating, np.ndarray)):
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        assert x.shape == y.shape, path
        if rtol == 0.0:
            assert np.array_equal(x, y, equal_nan=True), path
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol, equal_nan=True, err_msg=path)
        return
    assert a == b, path


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20240611)
    n = 120
    time = rng.integers(1, 30, n).astype(np.float64)  # many ties
    event = (rng.random(n) < 0.7).astype(np.int64)
    group = rng.integers(0, 3, n).astype(np.int64)
    cause = np.where(rng.random(n) < 0.75, rng.integers(1, 3, n), 0).astype(np.int64)
    cause[0] = 1
    X = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n), rng.integers(0, 2, n)]
                        ).astype(np.float64)
    return {"time": time, "event": event, "group": group, "cause": cause, "X": X,
            "strata": rng.integers(0, 2, n).astype(np.int64)}


# ---------------------------------------------------------------- equal to the public functions

@pytest.mark.parametrize("conf_type", ["log-log", "log", "plain", "spss"])
def test_km_fit_equals_kaplan_meier(data, conf_type):
    t, e = data["time"], data["event"]
    _same(fit.km_fit(t, e, conf_type=conf_type, alpha=0.1),
          kaplan_meier(t, e, conf_type=conf_type, alpha=0.1))


def test_km_fits_equals_kaplan_meier_per_conf_type(data):
    t, e = data["time"], data["event"]
    types = ("spss", "log", "log-log", "plain")
    got = fit.km_fits(t, e, conf_types=types, alpha=0.05)
    assert len(got) == len(types)
    for res, c in zip(got, types):
        _same(res, kaplan_meier(t, e, conf_type=c))


@pytest.mark.parametrize("stratified", [False, True])
def test_logrank_fit_equals_logrank(data, stratified):
    t, e, g = data["time"], data["event"], data["group"]
    labels = np.array(["a", "b", "c"], dtype=object)
    strata = data["strata"] if stratified else None
    _same(fit.logrank_fit(t, e, g, labels, strata=strata),
          logrank(t, e, labels[g], strata=strata))


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("stratified", [False, True])
def test_coxph_fit_equals_cox(data, ties, stratified):
    names = ["x0", "x1", "x2"]
    frame = pd.DataFrame(data["X"], columns=names)
    frame["time"], frame["event"], frame["s"] = data["time"], data["event"], data["strata"]
    strata = data["strata"] if stratified else None
    got = fit.coxph_fit(data["X"], data["time"], data["event"], names=names, ties=ties,
                      strata=strata, strata_names=("s",) if stratified else (), alpha=0.1)
    want = cox(frame, duration="time", event="event", covariates=names, ties=ties,
               strata="s" if stratified else None, alpha=0.1)
    _same(got, want)


@pytest.mark.parametrize("variance", ["crr", "stata"])
def test_finegray_fit_equals_fine_gray(data, variance):
    names = ["x0", "x1", "x2"]
    frame = pd.DataFrame(data["X"], columns=names)
    frame["time"], frame["cause"] = data["time"], data["cause"]
    times = fit.finegray_prepare_times(data["time"], data["cause"], cause_of_interest=1)
    prep = fit.finegray_prepare(data["time"], data["cause"], data["X"], cause_of_interest=1,
                                times=times)
    got = fit.finegray_fit(prep, names=names, cause_of_interest=1, variance=variance)
    want = fine_gray(frame, duration="time", cause="cause", covariates=names, variance=variance)
    _same(got, want)
    # prepared without shared times: the same
    alone = fit.finegray_prepare(data["time"], data["cause"], data["X"], cause_of_interest=1)
    _same(fit.finegray_fit(alone, names=names, variance=variance), want)


def test_finegray_fit_univariate_equals_fine_gray(data):
    names = ["x0", "x1", "x2"]
    frame = pd.DataFrame(data["X"], columns=names)
    frame["time"], frame["cause"] = data["time"], data["cause"]
    times = fit.finegray_prepare_times(data["time"], data["cause"], cause_of_interest=1)
    assert times.dense is not None
    preps = [fit.finegray_prepare(data["time"], data["cause"], data["X"][:, [j]],
                                  cause_of_interest=1, times=times) for j in range(3)]
    fitted = fit.finegray_fit_univariate(times, preps, tol=1e-9, max_iter=50)
    assert len(fitted) == 3 and all(f is not None for f in fitted)
    for j, (prep, f) in enumerate(zip(preps, fitted)):
        got = fit.finegray_fit(prep, names=[names[j]], variance="stata", fitted=f)
        want = fine_gray(frame, duration="time", cause="cause", covariates=[names[j]],
                         variance="stata")
        _same(got, want, rtol=1e-12)


def test_contingency_pieces_equal_contingency_test(data):
    rng = np.random.default_rng(7)
    for shape in [(2, 2), (2, 3), (3, 4)]:
        for _ in range(5):
            counts = rng.integers(0, 12, shape).astype(np.int64)
            counts[:, 0] += 1
            counts[0] += 1
            expected = fit.expected_counts(counts)
            _same(expected, contingency_test(counts).expected)
            auto = contingency_test(counts, method="auto")
            if "workspace" not in auto.reason:
                assert fit.auto_contingency_method(expected) == (auto.method, auto.reason)
            if shape == (2, 2):
                _same(fit.fisher_2x2_p(counts), contingency_test(counts, method="fisher").p_value)
            for method in ("pearson", "n-1", "g") + (("yates",) if shape == (2, 2) else ()):
                _same(fit.chisq_p(counts, expected, method=method),
                      contingency_test(counts, method=method).p_value)


@pytest.mark.parametrize("continuity", [False, True])
def test_mann_whitney_fit_equals_two_sample_test(data, continuity):
    v, g = data["X"][:, 1].round(1), data["group"] % 2  # rounded: ties
    a, b = v[g == 0], v[g == 1]
    want = two_sample_test(v, g, method="mann-whitney", continuity=continuity)
    _same(fit.mann_whitney_fit(a, b, continuity=continuity), (want.statistic, want.z, want.p_value))


@pytest.mark.parametrize("method", ["t-test", "welch"])
def test_t_test_fit_equals_two_sample_test(data, method):
    v, g = data["X"][:, 1], data["group"] % 2
    a, b = v[g == 0], v[g == 1]
    want = two_sample_test(v, g, method=method)
    _same(fit.t_test_fit(a, b, pooled=(method == "t-test")), (want.statistic, want.df, want.p_value))


# ---------------------------------------------------------------- the contract

def _functions():
    return [(name, getattr(fit, name)) for name in fit.__all__
            if inspect.isfunction(getattr(fit, name))]


def test_all_lists_existing_names_and_every_function():
    assert all(hasattr(fit, name) for name in fit.__all__)
    defined = {n for n, f in vars(fit).items()
               if inspect.isfunction(f) and f.__module__ == fit.__name__ and not n.startswith("_")}
    assert defined <= set(fit.__all__)


@pytest.mark.parametrize("name", [n for n, _ in _functions()])
def test_options_are_keyword_only(name):
    func = getattr(fit, name)
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert all(p.default is p.empty for p in positional), f"{name}: an option can be given by position"
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)


def test_positional_option_raises_type_error(data):
    t, e = data["time"], data["event"]
    calls = [
        lambda: fit.km_fit(t, e, "log"),
        lambda: fit.km_fits(t, e, ("log",)),
        lambda: fit.logrank_fit(t, e, data["group"], np.arange(3), None),
        lambda: fit.coxph_fit(data["X"], t, e, ["a", "b", "c"]),
        lambda: fit.finegray_prepare_times(t, data["cause"], 1),
        lambda: fit.finegray_prepare(t, data["cause"], data["X"], 1),
        lambda: fit.finegray_fit(None, ["a"]),
        lambda: fit.finegray_fit_univariate(None, [], 1e-9),
        lambda: fit.mann_whitney_fit(t, t, False),
        lambda: fit.t_test_fit(t, t, True),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            call()


def test_every_function_is_documented_and_typed():
    for name, func in _functions():
        doc = inspect.getdoc(func) or ""
        assert "Parameters\n----------" in doc and "Returns\n-------" in doc, name
        sig = inspect.signature(func)
        assert sig.return_annotation is not sig.empty, name
        assert all(p.annotation is not p.empty for p in sig.parameters.values()), name


# ---------------------------------------------------------------- the plan uses the public layer only

def _private_stats_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[:2] == ["failpattern", "stats"]:
                if any(p.startswith("_") for p in parts):
                    found.append(f"{path.name}:{node.lineno}: from {node.module}")
                found += [f"{path.name}:{node.lineno}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith("failpattern.stats.")
                      and any(p.startswith("_") for p in a.name.split("."))]
    return found


def test_study_imports_no_private_name_of_stats():
    files = sorted((SRC / "study").rglob("*.py"))
    assert any(f.name == "survival.py" for f in files)
    found = [hit for f in files for hit in _private_stats_imports(f)]
    assert not found, "the plan must import failpattern.stats.fit, not private names: " + "; ".join(found)


def test_the_check_sees_private_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from failpattern.stats._coxfit import cox_fit\n"
                   "from failpattern.stats.km import _km_curve\n"
                   "from failpattern.stats import _finegray_kernel\n"
                   "from failpattern.stats.fit import km_fit\n", encoding="utf-8")
    assert len(_private_stats_imports(bad)) == 3

"""The shared validator: every rule gives an InputError naming argument, position and value."""

import numpy as np
import pandas as pd
import pytest

from failpattern.errors import InputError
from failpattern.stats import _validate as v


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ([1.0, -2.0, 3.0], "negative"),
        ([1.0, np.nan], "missing"),
        ([np.inf, 1.0], "infinite"),
        (["1", "two"], "not numeric at position 1 = 'two'"),
        ([], "empty"),
        ([[1, 2], [3, 4]], "one-dimensional"),
        ("12", "string"),
    ],
)
def test_durations_rejects(values, fragment):
    with pytest.raises(InputError, match="time") as info:
        v.as_durations(values)
    assert fragment in str(info.value)


def test_durations_names_position_and_value():
    with pytest.raises(InputError) as info:
        v.as_durations([3.0, 1.0, -4.5, 2.0])
    assert "position 2 = " in str(info.value) and "-4.5" in str(info.value)


def test_pandas_index_labels_are_used():
    s = pd.Series([1.0, -1.0], index=["p01", "p02"])
    with pytest.raises(InputError, match="index 'p02'"):
        v.as_durations(s, name="pfs1_months")


def test_durations_accepts_and_copies():
    src = np.array([0.0, 1.5, 2.0])
    out = v.as_durations(src)
    out[0] = 9.0
    assert src[0] == 0.0  # never writes into the caller's array


def test_events():
    assert v.as_events([True, False, 1]).tolist() == [1, 0, 1]
    with pytest.raises(InputError, match=r"event: .*position 1 = 2"):
        v.as_events([1, 2, 0])
    with pytest.raises(InputError, match="0 \\(censored\\) or 1"):
        v.as_events([0.5, 1])


def test_causes():
    assert v.as_causes([0, 1, 3]).tolist() == [0, 1, 3]
    with pytest.raises(InputError, match="cause"):
        v.as_causes([0, -1])
    with pytest.raises(InputError, match="cause"):
        v.as_causes([0, 1.5])


def test_groups():
    codes, labels = v.as_groups(["b", "a", "b"])
    assert codes.tolist() == [1, 0, 1] and labels.tolist() == ["a", "b"]
    with pytest.raises(InputError, match="at least 2 groups, found 1"):
        v.as_groups(["a", "a"])
    with pytest.raises(InputError, match="missing"):
        v.as_groups(["a", None, "b"])


def test_lengths():
    assert v.check_lengths(time=np.zeros(3), event=np.zeros(3)) == 3
    with pytest.raises(InputError, match="time has 3, event has 2"):
        v.check_lengths(time=np.zeros(3), event=np.zeros(2))


def test_alpha_and_choice():
    assert v.check_alpha(0.05) == 0.05
    for bad in (0, 1, -0.1, "0.05"):
        with pytest.raises(InputError, match="alpha"):
            v.check_alpha(bad)
    with pytest.raises(InputError, match="ties: must be one of 'efron', 'breslow'; got 'exact'"):
        v.check_choice("exact", "ties", ("efron", "breslow"))


def test_covariate_matrix():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0, 1, 1], "c": ["x", "y", "x"],
                       "k": [2.0, 2.0, 2.0], "m": [1.0, np.nan, 0.0]})
    assert v.covariate_matrix(df, ["a", "b"]).shape == (3, 2)
    with pytest.raises(InputError, match="'c' is not numeric"):
        v.covariate_matrix(df, ["a", "c"])
    with pytest.raises(InputError, match="'k' is constant"):
        v.covariate_matrix(df, ["k"])
    with pytest.raises(InputError, match="'m' has 1 missing"):
        v.covariate_matrix(df, ["m"])
    with pytest.raises(InputError, match="'zz' is not in data"):
        v.covariate_matrix(df, ["zz"])
    with pytest.raises(InputError, match="more than once"):
        v.covariate_matrix(df, ["a", "a"])
    with pytest.raises(InputError, match="DataFrame"):
        v.covariate_matrix({"a": [1]}, ["a"])


@pytest.mark.parametrize("values", [
    np.array([3, 1, 3, 2, 1]), np.array([-4, 7, -4, 0], dtype=np.int32),
    np.array([5, 5, 9], dtype=np.uint8), np.array([10**12, 1, 10**12]),
    np.array([-128, 127, 0, -128], dtype=np.int8),
    pd.Series([2, 0, 2], index=["a", "b", "c"]), np.array([1.5, 0.5, 1.5]),
    np.array(["b", "a", "b"], dtype=object), np.array([True, False, True])])
def test_as_groups_equals_np_unique(values):
    # integer labels are counted rather than sorted; the result must be np.unique's
    codes, levels = v.as_groups(values, "group", min_groups=1)
    expected_levels, expected_codes = np.unique(np.asarray(values), return_inverse=True)
    np.testing.assert_array_equal(levels, expected_levels)
    assert levels.dtype == expected_levels.dtype
    np.testing.assert_array_equal(codes, expected_codes)
    assert codes.dtype == np.int64

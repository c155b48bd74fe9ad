"""Study cards: loading, schema validation, and the internal consistency of the Ni et al. 2019 card.

The card's numbers are data; these tests never restate them. They check that
the card is complete and self-consistent (counts add up, percentages equal
count / denominator at the printed precision) and that every place where the
paper is not consistent carries an ``inconsistency`` entry.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from failpattern.cli.card import card as card_command
from failpattern.errors import InputError
from failpattern.study import StudyCard, StudyCardError, load_study, recompute_aggregates
from failpattern.study.card import CONVENTIONS, METHODS, UNITS, printed_round

CARDS = Path(__file__).parent / "cards"
REQUIRED_COLUMNS = ["id", "value", "location", "analysis", "ci_lower", "ci_upper", "population", "endpoint",
                    "grouping", "method", "convention", "tolerance", "decimals", "notes"]


@pytest.fixture(scope="module")
def card() -> StudyCard:
    return load_study("ni2019")


@pytest.fixture(scope="module")
def numbers(card):
    return card.numbers


# ----------------------------------------------------------------------------- the Ni 2019 card
def test_card_loads_with_metadata(card):
    assert card.name == "ni2019"
    assert card.study["n"] == card.populations["all"].n
    assert set(card.study["software"]) == {"spss22", "stata13"}
    assert card.path.name == "ni2019.yaml"


def test_card_loads_from_a_path_too(card):
    again = load_study(card.path)
    assert again.ids == card.ids


def test_card_holds_well_over_100_numbers(numbers):
    assert len(numbers) > 100
    for prefix in ("t1.", "t2.", "t3."):  # each table is in
        assert numbers.id.str.startswith(prefix).sum() > 20


def test_numbers_frame_has_the_documented_columns(numbers):
    assert set(REQUIRED_COLUMNS) <= set(numbers.columns)
    assert numbers[["id", "value", "location", "analysis", "population", "method"]].notna().all().all()


def test_ids_unique_and_readable(card, numbers):
    assert numbers.id.is_unique
    assert all(re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", i) for i in numbers.id)
    assert not {c.id for c in card.checks} & set(numbers.id)


def test_vocabularies_respected(numbers):
    assert set(numbers.method) <= set(METHODS)
    assert set(numbers.convention) <= set(CONVENTIONS)
    assert set(numbers.unit.dropna()) <= set(UNITS)


def test_decimals_follow_the_printed_text(card):
    # "11.5" and "0.010" keep their printed precision; a count has none.
    assert card.get("pfs1.median.all").decimals == 1
    assert card.get("t1.brain_met.p").decimals == 3
    assert card.get("progression1.n").decimals == 0
    for r in card.numbers.itertuples():
        assert printed_round(r.value, r.decimals) == r.value, r.id


def test_default_tolerances_come_from_the_method(numbers):
    for method, group in numbers.groupby("method"):
        default = METHODS[method].tolerance
        if default is None:  # constants and cited numbers are not regression targets
            assert group.tolerance.isna().all(), method
        else:
            # the Ni card sets a tolerance of its own only for "not significantly different"
            # (p >= alpha, tolerance 0: a p just below alpha contradicts the claim)
            claim = (group.relation == "ge") & (group.value == 0.05)
            assert (group.tolerance[~claim] == default).all(), method
            assert (group.tolerance[claim] == 0).all(), method


def test_every_percentage_has_its_count(numbers):
    props = numbers[numbers.method == "proportion"]
    assert len(props) > 50
    assert props.numerator.notna().all(), list(props[props.numerator.isna()].id)


def test_counts_and_percentages_consistent_unless_noted(card):
    cons = card.consistency()
    assert (cons.kind == "proportion").sum() == (card.numbers.method == "proportion").sum()
    assert (cons.kind == "sum").sum() == len(card.checks)
    unexplained = cons[cons.status == "FAIL"]
    assert unexplained.empty, unexplained.to_string()
    noted = cons[cons.status == "noted"]  # the paper does contradict itself; the card says where
    assert set(noted.id) == {"t1.lung_met.no.nonrt.pct", "sum.brain_pd.table2", "sum.t2.primary_only.patterns",
                             "sum.t2.metastasis_only.patterns"}
    approx = cons.set_index("id").loc["salvage.eligible.pct_discussion"]
    assert approx.status == "ok"  # "approximately 66%" for 35/52 = 67.3%: within one patient


def test_table1_columns_add_up(card, numbers):
    # every Table 1 level: Non-RT + RT = all, and the RT / Non-RT columns use the populations' n
    assert card.populations["nonrt"].n + card.populations["rt"].n == card.populations["all"].n
    t1 = numbers[numbers.id.str.match(r"t1\..*\.all\.n$")]
    for r in t1.itertuples():
        stem = r.id[: -len(".all.n")]
        assert card.get(f"{stem}.nonrt.n").value + card.get(f"{stem}.rt.n").value == r.value, stem


def test_population_sizes_agree_with_their_counts(card):
    for p in card.populations.values():
        if p.count_id is not None:
            assert card.get(p.count_id).value == p.n, p.name
        if p.parent is not None and p.n is not None:
            assert p.n <= card.populations[p.parent].n, p.name


def test_known_inconsistency_brain_30_vs_31(card):
    text, table = card.get("brain_pd.n"), card.get("t2.brain.all.n")
    assert text.value != table.value
    for r in (text, table):
        assert r.inconsistency and f"{text.value:g}" in r.inconsistency and f"{table.value:g}" in r.inconsistency


def test_known_inconsistency_table1_lung_no_nonrt(card):
    r = card.get("t1.lung_met.no.nonrt.pct")
    exact = 100 * card.get(r.numerator[0]).value / card.denominator_of(r)
    assert printed_round(exact, r.decimals) != r.value
    assert r.inconsistency and f"{printed_round(exact, 1):g}" in r.inconsistency


def test_known_inconsistency_actuarial_rates_over_progressed(card):
    n_progressed = card.populations["progressed"].n
    for rid in ("pattern.any.rate_12m", "pattern.any.rate_24m"):
        r = card.get(rid)
        ks = [k for k in range(n_progressed + 1) if printed_round(100 * k / n_progressed, r.decimals) == r.value]
        assert len(ks) == 1
        assert r.inconsistency and f"{ks[0]}/{n_progressed}" in r.inconsistency
        assert r.denominator == "progressed" and r.population == "all"


def test_other_inconsistencies_recorded(card, numbers):
    flagged = set(numbers[numbers.inconsistency.notna()].id)
    # Table 2 rows that do not add up across OF / DF / ODF, Table 3's liver CI, the 0.223 attribution
    assert {"t2.primary_only.all.n", "t2.metastasis_only.all.n", "t3.uni.liver_met.shr",
            "pfs1.prior_rt.p"} <= flagged
    assert "salvage.eligible.pct_discussion" not in flagged  # an approximation, not a contradiction
    noted_checks = {c.id for c in card.checks if c.inconsistency}
    assert {"sum.brain_pd.table2", "sum.t2.primary_only.patterns", "sum.t2.metastasis_only.patterns"} <= noted_checks


def test_values_inside_their_ci_and_range(numbers):
    ci = numbers[numbers.ci_lower.notna()]
    assert len(ci) > 20
    assert ((ci.ci_lower <= ci.value) & (ci.value <= ci.ci_upper)).all()
    rng = numbers[numbers.range_lower.notna()]
    assert ((rng.range_lower <= rng.value) & (rng.value <= rng.range_upper)).all()


def test_every_contingency_p_has_a_table(numbers):
    cp = numbers[numbers.method == "contingency_p"]
    assert len(cp) >= 14
    printed = cp[cp.relation == "eq"]  # "not significantly different" (p >= alpha) comes without counts
    assert len(printed) >= 14 and len(cp) - len(printed) == 1
    assert (printed.table.notna() | printed.events.notna()).all()


def test_get_unknown_id_suggests(card):
    with pytest.raises(KeyError, match="pfs1.median.all"):
        card.get("pfs1.median.al")


def test_card_is_frozen(card):
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.name = "other"
    frame = card.numbers
    frame.loc[0, "value"] = -1
    assert card.numbers.loc[0, "value"] != -1
    with pytest.raises(TypeError):
        card.populations["all"] = None


# ----------------------------------------------------------------------------- malformed cards
def test_minimal_card_loads_with_defaults():
    c = load_study(CARDS / "valid_minimal.yaml")
    r = c.get("pfs.median.all")
    assert (r.tolerance, r.decimals, r.convention, r.ci_level) == (METHODS["km_median"].tolerance, 1, "spss22", 0.95)
    assert c.get("cohort.n").convention == "none"
    assert c.get("arm.treated.pct").population == "all"  # from the section defaults
    assert (c.consistency().status == "ok").all()


MALFORMED = [  # file, field, words of the rule, line
    ("unknown_method.yaml", "method", "unknown method", 37),
    ("missing_value.yaml", "value", "required field missing", 25),
    ("duplicate_id.yaml", "id", "duplicate id", 25),
    ("ci_reversed.yaml", "ci_lower", "greater than ci_upper", 35),
    ("value_outside_ci.yaml", "value", "outside its confidence interval", 34),
    ("negative_tolerance.yaml", "tolerance", "tolerance must be >= 0", 40),
    ("unknown_population.yaml", "population", "unknown population", 30),
    ("unknown_analysis.yaml", "analysis", "unknown analysis", 38),
    ("unknown_field.yaml", "lower_ci", "unknown field", 40),
    ("population_count_mismatch.yaml", "count_id", "population n = 41", 11),
    ("bad_numerator.yaml", "numerator", "unknown number id", 31),
    ("p_out_of_range.yaml", "value", "p-value must lie in [0, 1]", 34),
    ("count_not_integer.yaml", "value", "count must be a non-negative integer", 26),
    ("half_ci.yaml", "ci_upper", "needs both ci_lower and ci_upper", 33),
    ("undeclared_convention.yaml", "convention", "not declared under study.software", 38),
    ("unknown_convention.yaml", "convention", "unknown convention", 38),
    ("duplicate_field.yaml", "value", "duplicate field", 40),
    ("bad_check.yaml", "terms", "unknown number id or population", 14),
    ("missing_schema.yaml", "schema", "must declare schema", 1),
    ("unknown_top_key.yaml", "analysis", "unknown top-level key", 8),
    ("bad_yaml.yaml", None, "not valid YAML", 37),
    ("contradicted_by_unknown.yaml", "contradicted_by", "unknown number id", 34),
    ("contradicted_by_unexplained.yaml", "contradicted_by", "needs an inconsistency", 33),
]


@pytest.mark.parametrize("name, fld, rule, line", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_card_reports_file_line_field_rule(name, fld, rule, line):
    path = CARDS / name
    with pytest.raises(StudyCardError) as info:
        load_study(path)
    err = info.value
    assert isinstance(err, InputError) and isinstance(err, ValueError)
    matching = [p for p in err.problems if rule in p.rule]
    assert matching, str(err)
    p = matching[0]
    assert (p.field, p.line) == (fld, line)
    assert p.file == str(path)
    assert str(path) in str(err) and rule in str(err)


def test_problem_names_the_number_and_value():
    with pytest.raises(StudyCardError) as info:
        load_study(CARDS / "negative_tolerance.yaml")
    (p,) = info.value.problems
    assert (p.id, p.value) == ("pfs.median.all", -0.5)
    assert "'pfs.median.all'" in str(p) and "-0.5" in str(p)


def test_all_problems_reported_at_once():
    with pytest.raises(StudyCardError) as info:
        load_study(CARDS / "many_problems.yaml")
    rules = " | ".join(p.rule for p in info.value.problems)
    for rule in ("unknown method", "duplicate id", "tolerance must be >= 0"):
        assert rule in rules
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)


def test_every_corpus_file_is_exercised():
    corpus = {p.name for p in CARDS.glob("*.yaml")}
    assert corpus == {m[0] for m in MALFORMED} | {"valid_minimal.yaml", "many_problems.yaml"}


def test_missing_card_and_unknown_name():
    with pytest.raises(StudyCardError, match="file not found"):
        load_study(CARDS / "no_such_card.yaml")
    with pytest.raises(StudyCardError, match="available: .*ni2019"):
        load_study("no_such_study")


# ----------------------------------------------------------------------------- CLI
def test_cli_summary(card):
    result = CliRunner().invoke(card_command, ["ni2019"])
    assert result.exit_code == 0, result.output
    assert card.study["citation"] in result.output
    assert f"{len(card)} numbers" in result.output
    assert "0 unexplained" in result.output


def test_cli_bad_card_prints_problems_without_traceback():
    result = CliRunner().invoke(card_command, [str(CARDS / "many_problems.yaml")])
    assert result.exit_code == 2
    assert "unknown method" in result.output and "duplicate id" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_worked_example_in_the_docs_loads(tmp_path):
    doc = (Path(__file__).parent.parent / "docs" / "study-cards.md").read_text(encoding="utf-8")
    example = doc.split("## Worked example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "doe2020.yaml"
    path.write_text(example, encoding="utf-8")
    c = load_study(path)
    assert c.name == "doe2020" and len(c) == 8
    assert (c.consistency().status == "ok").all()
    assert (recompute_aggregates(c).verdict == "reproduced").all()


def test_table1_p_values_no_standard_test_gives_are_contradicted_by_their_counts(card):
    """Eight Table 1 p-values carry the evidence: no standard test (Pearson, Yates, G, N-1, Fisher)
    gives them from the printed counts, so a cohort with those counts cannot reproduce them."""
    from failpattern.study import recompute_aggregates

    agg = recompute_aggregates(card)
    agg = agg[(agg["kind"] == "contingency_p") & agg["id"].str.match(r"t1\.\w+\.p$")].set_index("id")
    for id_, row in agg.iterrows():
        number = card.get(id_)
        cells = {c for r in number.table for c in r}
        if row["matches"]:
            assert not number.contradicted_by, id_
        else:
            assert set(number.contradicted_by) == cells, id_
            assert "No standard test gives" in number.inconsistency
            for test in ("pearson", "yates", "g", "n_minus_1", "fisher"):  # the evidence quotes every test
                assert f"{row[test]:.4f}" in number.inconsistency, (id_, test)
    assert (agg["matches"].str.len() == 0).sum() == 8


def test_a_part_can_be_contradicted(card, tmp_path):
    liver = card.get("t3.uni.liver_met.shr")
    assert liver.contradictions("ci_lower") == ("t3.uni.liver_met.shr", "t3.uni.liver_met.p")
    assert liver.contradictions("value") == () and liver.contradictions("ci_upper") == ()
    from failpattern.study.card import StudyCardError, load_study
    from failpattern._resources import study_path

    text = study_path("ni2019").read_text(encoding="utf-8")
    bad = text.replace("contradicted_by: {ci_lower: [t3.uni.liver_met.shr",
                       "contradicted_by: {range_min: [t3.uni.liver_met.shr", 1)
    assert bad != text
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(StudyCardError, match="prints no range_min"):
        load_study(path)
    path.write_text(text.replace("contradicted_by: {ci_lower:", "contradicted_by: {ci_low:", 1), encoding="utf-8")
    with pytest.raises(StudyCardError, match="unknown part 'ci_low'"):
        load_study(path)

"""The count skeleton solved by CP-SAT (failpattern.simulate.reconstruct.counts).

Every count is recounted here from the skeleton's arrays, independently of the
module's own rule list and summary.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from failpattern.errors import InputError
from failpattern.simulate.reconstruct import (
    NOT_EXPRESSED,
    CountSkeleton,
    count_rules,
    solve_counts,
)
from failpattern.simulate.reconstruct.counts import (
    implied_events,
    km_implied_events,
    soft_rules,
)
from failpattern.study import load_study
from skeletons import few_rounds, skeleton

CARD = load_study("ni2019")
SITES = ("lung", "liver", "brain", "bone", "adrenal", "regional_ln", "distant_ln", "other")
T2_NAME = {"other": "others"}
#: the sides of the card's contradictions that the skeleton does not follow (docs/simulator.md)
DECLARED = {"t2.primary_only.all.n", "t2.metastasis_only.all.n", "t2.brain.all.n", "t2.brain.odf.n"}


@pytest.fixture(scope="module")
def sk() -> CountSkeleton:
    return skeleton(1)


def recount(s: CountSkeleton) -> dict[str, np.ndarray]:
    """Card count id -> mask of the patients it counts, from the arrays alone."""
    a = {k: np.asarray(getattr(s, k)) for k in s.array_fields()}
    ones = np.ones(s.n, bool)
    rt = a["rt"] == 1
    prog = a["pattern"] > 0
    bbm = a["met_brain"] == 1
    oligo, multiple = a["burden"] == 1, a["burden"] == 2
    srs, wbrt = a["brain_rt"] == 1, a["brain_rt"] == 2
    brain_rt = a["brain_rt"] > 0
    thoracic = np.isin(a["xrt"], (1, 4))
    bone = np.isin(a["xrt"], (2, 4))
    adrenal = a["xrt"] == 3
    m: dict[str, np.ndarray] = {"cohort.enrolled.n": ones, "rt_course.n": rt}
    t1 = {"sex": ("female", "male", a["male"] == 1),
          "histology": ("adeno", "non_adeno", a["non_adeno"] == 1),
          "ecog": ("ecog0_1", "ecog2", a["ecog2"] == 1),
          "t_stage": ("t1_2", "t3_4", a["t34"] == 1),
          "n_stage": ("n1_3", "n0", a["n0"] == 1),
          "met_organs": ("organs1_2", "organs3plus", a["organs"] >= 3),
          "met_lesions": ("lesions1_5", "lesions6plus", a["lesions6"] == 1)}
    for site in ("lung", "liver", "brain", "adrenal", "bone"):
        t1[f"{site}_met"] = ("no", "yes", a[f"met_{site}"] == 1)
    for row, (lev0, lev1, flag) in t1.items():
        for col, grp in (("all", ones), ("rt", rt), ("nonrt", ~rt)):
            m[f"t1.{row}.{lev1}.{col}.n"] = grp & flag
            m[f"t1.{row}.{lev0}.{col}.n"] = grp & ~flag
    m.update({
        "bbm.oligo.n": oligo, "bbm.multiple.n": multiple,
        "treatment.first_line.n": a["pretreated"] == 0, "treatment.pretreated.n": a["pretreated"] == 1,
        "prior_rt.n": brain_rt | (a["xrt"] > 0), "prior_rt.brain.n": brain_rt,
        "prior_rt.thoracic.n": thoracic, "prior_rt.bone.n": bone, "prior_rt.adrenal.n": adrenal,
        "prior_rt.extracranial.n": a["xrt"] > 0,
        "prior_rt.srs_oligo.n": srs & oligo, "prior_rt.srs_multiple.n": srs & multiple,
        "prior_rt.wbrt_oligo.n": wbrt & oligo, "prior_rt.wbrt_multiple.n": wbrt & multiple,
        "prior_rt.wbrt.n": wbrt, "prior_rt.wbrt.symptomatic.n": a["wbrt_symptomatic"] == 1,
        "prior_rt.wbrt.alleviated.n": a["wbrt_alleviated"] == 1,
        "bbm.no_prior_brain_rt.n": bbm & ~brain_rt, "bbm.oligo_no_prior_brain_rt.n": oligo & ~brain_rt,
        "progression1.n": prog,
        "brain_pd.n": a["fail_brain"] == 1, "brain_pd.bbm.n": bbm & (a["fail_brain"] == 1),
        "brain_pd.no_bbm.n": ~bbm & (a["fail_brain"] == 1),
        "multi_pd.bbm.n": bbm & (a["btype"] == 2), "multi_pd.no_bbm.n": ~bbm & (a["btype"] == 2),
        "brain_pd.bbm_prior_brain_rt.n": bbm & brain_rt & (a["fail_brain"] == 1),
        "brain_pd.bbm_no_prior_brain_rt.n": bbm & ~brain_rt & (a["fail_brain"] == 1),
        "multi_pd.oligo_no_prior_rt.n": oligo & ~brain_rt & (a["btype"] == 2),
        "multi_pd.oligo_prior_srs.n": oligo & srs & (a["btype"] == 2),
        "salvage.eligible.n": a["elig"] > 0, "salvage.received.n": a["salvage"] > 0,
        "after_pd.cbpd.n": a["next"] == 0, "after_pd.discontinued.n": a["next"] > 0,
        "after_pd.bsc.n": a["next"] == 1, "after_pd.alk2.n": a["next"] == 2,
        "after_pd.chemo.n": a["next"] == 3,
        "progression2.n": a["pfs2_event"] == 1, "deaths.n": a["os_event"] == 1,
    })
    for k, level in enumerate(("cr", "pr", "sd", "pd")):
        m[f"response.{level}.n"] = a["response"] == k
    for k, tech in enumerate(("wbrt", "srs", "sbrt"), start=1):
        m[f"salvage.eligible_{tech}.n"] = a["elig"] == k
        m[f"salvage.{tech}.n"] = a["salvage"] == k
    pats = {"of": a["pattern"] == 1, "df": a["pattern"] == 2, "odf": a["pattern"] == 3, "all": prog}
    for pat in ("of", "df", "odf"):
        m[f"pattern.{pat}.n"] = pats[pat]
    for k, loc in enumerate(("primary_only", "metastasis_only", "primary_and_metastasis"), start=1):
        for pat, mask in pats.items():
            m[f"t2.{loc}.{pat}.n"] = mask & (a["location"] == k)
    for site in SITES:
        for pat, mask in pats.items():
            m[f"t2.{T2_NAME.get(site, site)}.{pat}.n"] = mask & (a[f"fail_{site}"] == 1)
    for site in ("wbrt", "srs", "thoracic", "bone", "liver", "adrenal", "distant_ln"):
        m[f"rt_course.{site}.n"] = rt & (a[f"course_{site}"] == 1)
    return m


def card_counts(card) -> dict[str, int]:
    nums = card.numbers
    return {r.id: int(r.value) for r in nums[nums.method == "count"].itertuples()
            if r.id not in NOT_EXPRESSED}


def test_every_card_count_is_covered():
    rules = {r.id for r in count_rules(CARD)}
    counts = set(card_counts(CARD))
    assert rules == counts
    assert set(recount(_dummy())) == counts
    assert {r.id for r in count_rules(CARD) if not r.enforced} == DECLARED


def _dummy() -> CountSkeleton:
    z = np.zeros(3, np.int64)
    return CountSkeleton(**{k: z for k in CountSkeleton.array_fields()}, summary=None)


def test_counts_hold(sk):
    assert sk.n == CARD.get("cohort.enrolled.n").value
    counts = card_counts(CARD)
    got = {k: int(v.sum()) for k, v in recount(sk).items()}
    wrong = {k: (got[k], v) for k, v in counts.items() if k not in DECLARED and got[k] != v}
    assert not wrong
    # the declared choices: Table 2's per-pattern columns and the text's 30 brain failures
    for loc in ("primary_only", "metastasis_only"):
        assert got[f"t2.{loc}.all.n"] == sum(counts[f"t2.{loc}.{p}.n"] for p in ("of", "df", "odf"))
    assert got["t2.brain.all.n"] == counts["brain_pd.n"]
    assert got["t2.brain.odf.n"] == counts["brain_pd.n"] - counts["t2.brain.of.n"] - counts["t2.brain.df.n"]
    # the summary agrees with the recount
    summ = sk.summary.set_index("id")
    assert all(summ.loc[k, "achieved"] == got[k] for k in counts)
    assert all(summ.loc[k, "target"] == v for k, v in counts.items())
    assert set(summ.index[~summ["enforced"]]) == DECLARED


def test_docstring_example():
    import doctest

    from failpattern.simulate.reconstruct import counts

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(counts.solve_counts, "solve_counts", globs={"solve_counts": solve_counts}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def test_codings_and_ranges(sk):
    assert set(np.unique(sk.pattern)) <= {0, 1, 2, 3}
    assert set(np.unique(sk.next)) <= {-1, 0, 1, 2, 3}
    assert set(np.unique(sk.xrt)) <= {0, 1, 2, 3, 4}
    for k in sk.array_fields():
        arr = getattr(sk, k)
        assert arr.shape == (sk.n,) and arr.dtype.kind == "i", k
    assert sk.to_frame().shape == (sk.n, len(sk.array_fields()))


def test_plausibility(sk):
    s = sk
    prog = s.pattern > 0
    bbm = s.met_brain == 1
    # prior RT only where there was disease (thoracic always allowed)
    assert np.all(bbm[s.brain_rt > 0])
    assert np.all(s.met_bone[np.isin(s.xrt, (2, 4))] == 1)
    assert np.all(s.met_adrenal[s.xrt == 3] == 1)
    # burden only with brain metastases
    assert np.array_equal(s.burden > 0, bbm)
    # organ count: >= flagged sites, consistent with >= 3 organs; <= 5 with 1-5 lesions
    flags = sum(getattr(s, f"met_{x}") for x in ("lung", "liver", "brain", "adrenal", "bone", "distant_ln"))
    assert np.all(s.organs >= flags) and np.all(s.organs >= 1)
    assert np.array_equal(s.organs == flags + s.other_organs, np.ones(s.n, bool))
    assert np.array_equal(s.organs >= 3, s.organs3 == 1)
    assert np.all(s.organs[s.lesions6 == 0] <= 5)
    # best response PD implies a first progression
    assert np.all(prog[s.response == 3])
    # location and sites
    assert np.array_equal(s.location > 0, prog)
    nsites = sum(s.fail[x] for x in SITES)
    assert np.all(nsites[np.isin(s.location, (2, 3))] >= 1)
    assert np.all(nsites[s.location == 1] == 0)
    assert np.all(nsites[~prog] == 0)
    with_primary = np.isin(s.location, (1, 3))
    base = {"lung": s.met_lung, "liver": s.met_liver, "brain": s.met_brain, "bone": s.met_bone,
            "adrenal": s.met_adrenal, "distant_ln": s.met_distant_ln, "other": s.other_organs > 0}
    new = np.zeros(s.n, bool)
    orig = with_primary | (s.fail_regional_ln == 1)
    for x, b in base.items():
        f = s.fail[x] == 1
        is_new = f & (b == 0) & (~with_primary if x == "lung" else True)
        new |= is_new
        orig |= f & ~is_new
    assert np.all(~new[s.pattern == 1]) and np.all(orig[s.pattern == 1])   # OF
    assert np.all(new[s.pattern == 2]) and np.all(~orig[s.pattern == 2])   # DF
    assert np.all(new[s.pattern == 3]) and np.all(orig[s.pattern == 3])    # ODF
    # brain progression type only with a brain failure
    assert np.array_equal(s.btype > 0, s.fail_brain == 1)
    # eligibility and salvage
    assert np.all(prog[s.elig > 0])
    assert np.all(s.btype[s.elig == 1] == 2)
    assert np.all(s.btype[s.elig == 2] == 1)
    extracranial = with_primary | (sum(s.fail[x] for x in SITES if x != "brain") > 0)
    assert np.all(extracranial[s.elig == 3])
    assert np.all(s.elig[s.salvage > 0] == s.salvage[s.salvage > 0])
    assert np.all(s.brain_rt[s.salvage == 1] != 2)          # no salvage WBRT after prior WBRT
    sbrt = sum(getattr(s, f"sbrt_{x}") for x in ("thoracic", "bone", "liver", "adrenal", "distant_ln"))
    assert np.array_equal(sbrt > 0, s.salvage == 3)
    # CBPD / next therapy, second progression, death only after a first progression
    assert np.array_equal(s.next >= 0, prog)
    assert np.all(prog[s.pfs2_event == 1])
    assert np.all(s.pfs2_event[s.os_event == 1] == 1)
    # RT group = any RT course; prior RT and salvage RT are courses
    courses = sum(getattr(s, f"course_{x}") for x in
                  ("wbrt", "srs", "thoracic", "bone", "liver", "adrenal", "distant_ln"))
    assert np.array_equal(s.rt == 1, courses > 0)
    assert np.all(s.rt[(s.brain_rt > 0) | (s.xrt > 0) | (s.salvage > 0)] == 1)
    assert np.all(s.course_wbrt[(s.brain_rt == 2) | (s.salvage == 1)] == 1)
    assert np.all(s.course_srs[(s.brain_rt == 1) | (s.salvage == 2)] == 1)
    # other courses need disease at the site
    brain_disease = bbm | (s.fail_brain == 1)
    assert np.all(brain_disease[(s.course_wbrt == 1) | (s.course_srs == 1)])
    for x in ("bone", "liver", "adrenal", "distant_ln"):
        c = getattr(s, f"course_{x}") == 1
        assert np.all((getattr(s, f"met_{x}") == 1)[c] | (s.fail[x] == 1)[c]), x


def test_deterministic():
    with few_rounds(2):  # rounds included: each draws its patients and solver seed from the rng
        one, again = (solve_counts(CARD, np.random.default_rng(1)) for _ in range(2))
    for k in one.array_fields():
        assert np.array_equal(getattr(one, k), getattr(again, k)), k


def test_variety():
    with few_rounds(2):  # the rounds re-solve random halves of the cohort: variety from the first on
        sk, other = (solve_counts(CARD, np.random.default_rng(seed)) for seed in (1, 2))
    # not just a reordering: the joint distribution of covariates and outcomes differs
    def cells(s):
        keys = np.stack([s.male, s.t34, s.organs3, s.lesions6, s.met_lung, s.pattern, s.rt], axis=1)
        rows, counts = np.unique(keys, axis=0, return_counts=True)
        return {tuple(r): c for r, c in zip(rows, counts)}
    assert cells(sk) != cells(other)


def _edit(tmp_path, changes: dict[str, int]):
    src = CARD.path
    text = src.read_text(encoding="utf-8")
    for number_id, value in changes.items():
        pat = re.compile(rf"(- id: {re.escape(number_id)}\n\s+value: )(\d+)")
        text, k = pat.subn(rf"\g<1>{value}", text)
        assert k == 1, number_id
    out = tmp_path / "edited.yaml"
    out.write_text(text, encoding="utf-8")
    return load_study(out)


def test_card_edit_is_followed(tmp_path):
    # one more man in the RT group, one fewer in the non-RT group (columns and "All" stay consistent)
    c = {k: CARD.get(k).value for k in ("t1.sex.male.rt.n", "t1.sex.female.rt.n",
                                        "t1.sex.male.nonrt.n", "t1.sex.female.nonrt.n")}
    card = _edit(tmp_path, {"t1.sex.male.rt.n": c["t1.sex.male.rt.n"] + 1,
                            "t1.sex.female.rt.n": c["t1.sex.female.rt.n"] - 1,
                            "t1.sex.male.nonrt.n": c["t1.sex.male.nonrt.n"] - 1,
                            "t1.sex.female.nonrt.n": c["t1.sex.female.nonrt.n"] + 1})
    with few_rounds(1):  # counts hold after every round
        s = solve_counts(card, np.random.default_rng(3))
    assert int(((s.rt == 1) & (s.male == 1)).sum()) == c["t1.sex.male.rt.n"] + 1
    assert int(((s.rt == 0) & (s.male == 1)).sum()) == c["t1.sex.male.nonrt.n"] - 1
    assert int(s.male.sum()) == CARD.get("t1.sex.male.all.n").value


def test_infeasible_card_names_ids(tmp_path):
    # adrenal RT before crizotinib in more patients than the RT group has adrenal metastases
    card = _edit(tmp_path, {"prior_rt.adrenal.n": CARD.get("t1.adrenal_met.yes.rt.n").value + 1})
    with pytest.raises(InputError) as err:
        solve_counts(card, np.random.default_rng(1), time_limit=20)
    msg = str(err.value)
    assert "prior_rt.adrenal.n" in msg
    # and what it conflicts with: the RT group's adrenal metastases or adrenal RT courses
    assert "t1.adrenal_met" in msg or "rt_course.adrenal.n" in msg


def test_implied_events_by_hand():
    # equal groups and a ratio of 1: the events split evenly
    assert implied_events(1.0, 40, 40, 20) == 10
    # a larger ratio never gives fewer events to the comparison group
    got = [implied_events(r, 30, 63, 26) for r in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert got == sorted(got) and got[0] < got[-1]
    # -log(1 - 12/27) / -log(1 - 14/66) = 2.46: Table 3's 2.44 for >= 3 metastatic organs reads as 12
    assert implied_events(2.44, 27, 66, 26) == 12
    # bounded by the group sizes
    assert implied_events(100.0, 5, 88, 26) == 5 and implied_events(0.01, 90, 3, 26) == 23


def test_km_implied_events():
    follow = np.linspace(2.0, 53.0, 200)
    # the parent expects its own printed events; a later median, fewer events
    assert km_implied_events(11.5, 93, (11.5, 93, 52), follow) == pytest.approx(52)
    got = [km_implied_events(m, 30, (11.5, 93, 52), follow) for m in (4.0, 8.0, 16.0, 32.0)]
    assert np.all(np.diff(got) < 0) and 0 < got[-1] < got[0] < 30
    assert np.isnan(km_implied_events(10.0, 30, (11.5, 93, 93), follow))  # no censoring to calibrate on


def test_the_skeleton_is_brought_toward_the_soft_cells(sk):
    rules = soft_rules(CARD)
    assert len(rules) == 15 + 7 and not any(r.enforced for r in rules)
    a = {k: np.asarray(getattr(sk, k)) for k in sk.array_fields()}
    of = a["pattern"] == 1
    level = {"sex": a["male"] == 1, "histology": a["non_adeno"] == 0, "ecog": a["ecog2"] == 1,
             "t_stage": a["t34"] == 1, "n_stage": a["n0"] == 0, "met_organs": a["organs"] >= 3,
             "met_lesions": a["lesions6"] == 1, "prior_lines": a["pretreated"] == 0,
             "prior_local_therapy": (a["brain_rt"] > 0) | (a["xrt"] > 0), "objective_response": a["response"] <= 1,
             **{f"{s}_met": a[f"met_{s}"] == 1 for s in ("lung", "liver", "brain", "adrenal", "bone")}}
    bbm, prior, prog = a["met_brain"] == 1, a["brain_rt"] > 0, a["pattern"] > 0
    ev2, salvage, cbpd = a["pfs2_event"] == 1, a["salvage"] > 0, a["next"] == 0
    groups = {"pfs1.median.bbm": prog & bbm, "pfs1.median.bbm_prior_brain_rt": prog & bbm & prior,
              "pfs1.median.bbm_no_prior_brain_rt": prog & bbm & ~prior, "pfs2.median.salvage_rt": ev2 & salvage,
              "pfs2.median.no_salvage_rt": ev2 & ~salvage, "pfs2.median.cbpd": ev2 & cbpd,
              "pfs2.median.non_cbpd": ev2 & ~cbpd}
    got = {r.id: int((of & level[r.id.split(".")[2]]).sum()) if r.id.startswith("t3.")
           else int(groups[r.id.removesuffix(".events")].sum()) for r in rules}
    off = {k: got[k] - r.target for k, r in zip(got, rules) if got[k] != r.target}
    # the canonical skeleton is 68 patients off; 3 cannot be avoided (the implied events of BBM
    # patients with and without prior brain RT add up to 3 more than those of all BBM patients)
    assert 3 <= sum(abs(v) for v in off.values()) <= 8, off

"""Bias checks: term-group representation and SageMaker Clarify's pre-training label metrics,
against values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from curata.errors import InvalidInput, NotFound
from curata.quality.bias import (
    DEFAULT_GROUPS,
    class_imbalance,
    label_bias,
    load_groups,
    representation,
)

# -- representation --------------------------------------------------------------------------


def test_default_lexicon_counts_mentions_and_rows() -> None:
    texts = [
        "She gave her book to him.",  # female: she, her; male: him
        "The men and the women met.",  # male: men; female: women
        "Nothing here.",
        None,
        "HE is here; he left",  # male: HE, he
    ]
    result = representation(texts)
    female, male = result.groups
    assert (female.group, female.mentions, female.rows) == ("female", 3, 2)
    assert (male.group, male.mentions, male.rows) == ("male", 4, 3)
    assert female.mention_share == pytest.approx(3 / 7)
    assert male.mention_share == pytest.approx(4 / 7)
    assert (female.row_share, male.row_share) == (0.4, 0.6)
    assert result.rows == 5
    assert result.ratio == pytest.approx((3 / 7) / (4 / 7))  # 0.75


def test_whole_words_only() -> None:
    result = representation(["another shepherd hero manual sheet theme"])
    assert [g.mentions for g in result.groups] == [0, 0]
    assert result.ratio is None  # nobody is mentioned: no ratio to speak of
    # "women's" -> women; "his/her" -> his, her: female 2, male 1 -> (1/3) / (2/3)
    assert representation(["women's rights", "his/her"]).ratio == pytest.approx(0.5)


def test_ratio_with_a_missing_group_is_zero() -> None:
    result = representation(["she", "her"])
    assert result.ratio == 0.0


def test_custom_groups_multi_word_terms_and_longest_match() -> None:
    groups = {"young": ["young people", "teen"], "old": ["elderly", "senior citizen"]}
    result = representation(["Young   people and a Senior\ncitizen", "a teen"], groups)
    assert [(g.group, g.mentions) for g in result.groups] == [("young", 2), ("old", 1)]
    single = representation(["a single mother"], {"a": ["mother", "single mother"], "b": ["x"]})
    assert single.groups[0].mentions == 1


def test_arrow_input_and_to_dict() -> None:
    result = representation(pa.chunked_array([["she", None], ["he"]]))
    data = result.to_dict()
    assert data == {
        "rows": 3,
        "ratio": 1.0,
        "groups": [
            {"group": "female", "mentions": 1, "mention_share": 0.5, "rows": 1, "row_share": 1 / 3},
            {"group": "male", "mentions": 1, "mention_share": 0.5, "rows": 1, "row_share": 1 / 3},
        ],
    }
    json.dumps(data)


def test_groups_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text("groups:\n  north: [oslo, bergen]\n  south: [rome]\n")
    groups = load_groups(path)
    assert groups == {"north": ("oslo", "bergen"), "south": ("rome",)}
    assert representation(["Oslo and Rome and Bergen"], groups).ratio == 0.5


@pytest.mark.parametrize(
    "text",
    ["north: [oslo]\n", "groups: [oslo]\n", "groups:\n  north: []\n", "groups:\n  north: oslo\n"],
)
def test_bad_group_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput):
        load_groups(path)


def test_group_files_that_are_not_yaml_text(tmp_path: Path) -> None:
    binary = tmp_path / "groups.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InvalidInput, match=r"groups\.bin:\d+: not UTF-8 text"):
        load_groups(binary)
    broken = tmp_path / "groups.yaml"
    broken.write_text('groups:\n  young: [teen, "young people"\n')
    with pytest.raises(InvalidInput, match=r"groups\.yaml:3:1: not valid YAML: expected ','"):
        load_groups(broken)


def test_missing_group_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"Term groups file .*nope\.yaml does not exist"):
        load_groups(tmp_path / "nope.yaml")


def test_default_lexicon_is_two_groups_of_words() -> None:
    assert set(DEFAULT_GROUPS) == {"female", "male"}
    assert {"she", "woman", "mother"} <= set(DEFAULT_GROUPS["female"])
    assert {"he", "man", "father"} <= set(DEFAULT_GROUPS["male"])


# -- label bias --------------------------------------------------------------------------------

# gender f: 4 rows, 1 approved; gender m: 6 rows, 3 approved; two rows dropped (NULL facet,
# NULL label).
LABELS = pa.table(
    {
        "gender": ["f", "f", "f", "f", "m", "m", "m", "m", "m", "m", None, "f"],
        "approved": [1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, None],
    }
)


def test_clarify_metrics_by_hand() -> None:
    result = label_bias(LABELS, "gender", "approved", 1)
    assert (result.rows, result.dropped_rows) == (10, 2)
    m, f = result.facets  # most frequent first
    assert (f.value, f.n_d, f.n_a) == ("f", 4, 6)
    # d = f, a = m. CI = (n_a - n_d) / (n_a + n_d) = (6 - 4) / 10
    assert f.ci == pytest.approx(0.2)
    # q_a = 3/6, q_d = 1/4, DPL = q_a - q_d
    assert (f.q_a, f.q_d, f.dpl) == pytest.approx((0.5, 0.25, 0.25))
    # P_a = (0.5, 0.5), P_d = (0.25, 0.75) over (positive, negative)
    # KL = 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75) = 0.5 ln(4/3)
    assert f.kl == pytest.approx(0.5 * math.log(4 / 3))
    # P = (0.375, 0.625); JS = 1/2 [KL(P_a || P) + KL(P_d || P)]
    kl_a = 0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.625)
    kl_d = 0.25 * math.log(0.25 / 0.375) + 0.75 * math.log(0.75 / 0.625)
    assert f.js == pytest.approx(0.5 * (kl_a + kl_d))
    assert f.js == pytest.approx(0.0338220756)
    # |P_a - P_d| = (0.25, 0.25): L2 = 0.25 sqrt(2), TVD = (0.25 + 0.25) / 2, KS = 0.25
    assert (f.lp, f.tvd, f.ks) == pytest.approx((0.25 * math.sqrt(2), 0.25, 0.25))
    # d = m: the mirror image; KL is not symmetric, JS is
    assert (m.value, m.n_d, m.n_a, m.ci, m.dpl) == ("m", 6, 4, pytest.approx(-0.2), -0.25)
    assert m.kl == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    assert m.js == pytest.approx(f.js)
    assert f.message == m.message == ""


def test_several_positive_labels_and_string_labels() -> None:
    table = pa.table({"lang": ["en", "en", "de", "de"], "label": ["yes", "maybe", "no", "yes"]})
    result = label_bias(table, "lang", "label", ["yes", "maybe"])
    en = next(f for f in result.facets if f.value == "en")
    assert (en.q_d, en.q_a, en.dpl, en.ci) == (1.0, 0.5, -0.5, 0.0)


def test_a_label_never_seen_in_the_facet_makes_kl_infinite() -> None:
    table = pa.table({"g": ["a", "a", "b", "b"], "y": [1, 1, 1, 0]})
    a = next(f for f in label_bias(table, "g", "y", 1).facets if f.value == "a")
    # P_a (the rest, b) = (0.5, 0.5); P_d (a) = (1, 0): the negative label never occurs in d
    assert a.kl == math.inf
    assert "KL is infinite" in a.message
    assert a.js == pytest.approx(0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
                                        + math.log(1 / 0.75)))  # fmt: skip
    data = label_bias(table, "g", "y", 1).to_dict()
    assert data["facets"][0]["kl"] is None
    json.dumps(data)


def test_empty_facets_are_explained() -> None:
    result = label_bias(LABELS, "gender", "approved", 1, values=["f", "x"])
    f, x = result.facets
    assert f.ci == pytest.approx(0.2)
    assert (x.n_d, x.ci, x.dpl) == (0, None, None)
    assert x.message == "No row has the facet value 'x'."
    only = label_bias(pa.table({"g": ["a", "a"], "y": [1, 0]}), "g", "y", 1)
    assert only.facets[0].ci is None
    assert "nothing to compare" in only.facets[0].message


def test_class_imbalance_formula() -> None:
    assert class_imbalance(6, 4) == 0.2
    assert class_imbalance(4, 6) == -0.2
    assert class_imbalance(0, 5) == -1.0


def test_label_bias_reads_readers_and_relations() -> None:
    expected = label_bias(LABELS, "gender", "approved", 1).to_dict()
    assert label_bias(LABELS.to_reader(), "gender", "approved", 1).to_dict() == expected
    relation = duckdb.connect().from_arrow(LABELS)
    assert label_bias(relation, "gender", "approved", 1).to_dict() == expected


def test_label_bias_input_errors() -> None:
    with pytest.raises(InvalidInput, match="Column 'sex' does not exist"):
        label_bias(LABELS, "sex", "approved", 1)
    with pytest.raises(InvalidInput, match="does not fit column approved"):
        label_bias(LABELS, "gender", "approved", "yes")

"""The identical-responses rule: chosen and rejected that are one text with typos, a sentence dropped or
added, are flagged; two different answers, or an answer and the same answer with a paragraph added, are
not (review/near_identical.py)."""

import json

import pytest

from annotation.models import Pair
from review import near_identical
from review.selections import REGISTRY

from .conftest import DPO_SAMPLE, shared_data
from .pair_data import make_pair

# An answer written for these tests, and copies of it as a generator or a careless edit makes them.
ANSWER = ("光合作用是绿色植物利用光能，把二氧化碳和水合成有机物并释放氧气的过程。它主要在叶绿体中进行。"
          "光反应阶段在类囊体膜上把光能转化为化学能，并分解水产生氧气。暗反应阶段在叶绿体基质中利用这些化学能"
          "固定二氧化碳，最终生成葡萄糖。因此，光合作用是地球上几乎所有生命的能量来源。")
TYPOS = ANSWER.replace("的过程", "得过程").replace("在叶绿体中", "再叶绿体中").replace("固定", "故定")
DROPPED = ANSWER.replace("它主要在叶绿体中进行。", "").replace("因此，光合作用是地球上几乎所有生命的能量来源。", "")
DROPPED_WITH_TYPO = DROPPED.replace("转化为", "转换为")
APPENDED = ANSWER + "希望这个解释对你有帮助，如果还有问题可以继续问我。"
REFORMATTED = ANSWER.replace("。", ". ").replace("，", ", ")
# Not copies: a different answer to the same question, the answer with a paragraph of its own added,
# and right and wrong one-line results.
OTHER_ANSWER = ("植物在阳光下吸收二氧化碳、放出氧气，这就是光合作用。简单说，叶子像一个小工厂，"
                "用阳光当动力，把空气里的二氧化碳和根吸上来的水做成养料。")
EXTENDED = ANSWER + ("影响光合作用的因素主要有光照强度、二氧化碳浓度和温度。在一定范围内，光照越强、二氧化碳浓度越高，"
                     "光合作用越强；温度过高或过低都会降低酶的活性，从而减弱光合作用。农业上常用补光、增施二氧化碳气肥"
                     "和控制大棚温度等方法来提高产量。")
RIGHT, WRONG = "答案是 B。", "答案是 D。"


@pytest.mark.parametrize("copy", [TYPOS, DROPPED, DROPPED_WITH_TYPO, APPENDED, REFORMATTED, ANSWER + "\n"],
                         ids=["typos", "dropped", "dropped_with_typo", "appended", "reformatted", "same"])
def test_copies_with_typos_or_a_sentence_dropped_or_added_are_near_identical(copy):
    assert near_identical.near_identical(ANSWER, copy) and near_identical.near_identical(copy, ANSWER)


@pytest.mark.parametrize("other", [OTHER_ANSWER, EXTENDED, ""], ids=["other_answer", "extended", "empty"])
def test_different_answers_and_an_answer_with_a_paragraph_added_are_not(other):
    assert not near_identical.near_identical(ANSWER, other)


def test_right_and_wrong_letter_answers_are_not_near_identical():
    assert not near_identical.near_identical(RIGHT, WRONG)
    assert near_identical.near_identical(RIGHT, "答案是B")


def test_the_settings_move_the_line():
    assert near_identical.near_identical(ANSWER, DROPPED)
    assert not near_identical.near_identical(ANSWER, DROPPED, similarity=0.95, containment=1.01)
    assert near_identical.near_identical(ANSWER, EXTENDED, similarity=0.5)


def test_the_rule_lists_the_copies_in_sql_narrowed_pairs(db, team):
    ds = team.dataset
    copies = {name: make_pair(ds, "什么是光合作用？", ANSWER, text, chosen_score=8.0, rejected_score=3.0)
              for name, text in [("typos", TYPOS), ("dropped", DROPPED), ("dropped_with_typo", DROPPED_WITH_TYPO),
                                 ("appended", APPENDED)]}
    others = [make_pair(ds, "什么是光合作用？", ANSWER, text, chosen_score=8.0, rejected_score=3.0)
              for text in (OTHER_ANSWER, EXTENDED)]
    others.append(make_pair(ds, "哪个数是质数？A. 21 B. 23 C. 25 D. 27", RIGHT, WRONG, domain="math"))
    rule = REGISTRY["identical-responses"]
    selected = set(rule.narrow(Pair.objects.filter(dataset=ds), ds, dict(rule.settings)).values_list("pk", flat=True))
    assert selected == {p.pk for p in copies.values()}
    assert not rule.narrow(Pair.objects.filter(dataset=ds, domain="math"), ds, dict(rule.settings)).exists()
    strict = rule.narrow(Pair.objects.filter(dataset=ds), ds, {**rule.settings, "similarity": 0.99, "containment": 1.0})
    assert set(strict.values_list("pk", flat=True)) == {copies["dropped"].pk, copies["appended"].pk}  # contained whole


def test_real_chosen_and_rejected_answers_are_not_near_identical_but_their_one_copy_is():
    rows = [json.loads(line) for line in shared_data(DPO_SAMPLE).read_text(encoding="utf-8").splitlines()]
    flagged = [row["chosen"]["value"] for row in rows
               if near_identical.near_identical(row["chosen"]["value"], row["rejected"]["value"])]
    assert flagged == ["我真的是故意的。"]  # and its rejected answer is "我是故意的。"


def test_a_similarity_of_exactly_the_setting_counts():
    # 2 edits over 10 characters: 1 − 2/10 = 0.8, which floating point makes 0.7999… if it is not careful.
    assert near_identical.near_identical("甲乙丙丁戊", "甲乙丙丁己")
    assert not near_identical.near_identical("甲乙丙丁戊", "甲乙丙己庚")

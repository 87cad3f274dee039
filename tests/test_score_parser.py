"""Reading the score out of what real judges write; never a default score."""

import pytest

from annotation.score_parser import PARSE_ERROR, REFUSED, parse_score


@pytest.mark.parametrize("raw, score", [
    ("分析：回答准确。\n[8]", 8),
    ("分析：回答准确。\n[[8]]", 8),
    ("分析：回答准确。\n【8】", 8),
    ("总体评分：8", 8),
    ("总体评分: 9 分", 9),
    ("评分: 8.5", 8.5),
    ("综合来看，这个回答可以得 8/10。", 8),
    ("总体评分：［８］", 8),
    ("总体评分：８", 8),
    ("总体评分：【１０】", 10),
    ("**总体评分**：[6]", 6),
    ("## 总体评分\n\n[[5]]", 5),
    ("Overall score: 9", 9),
    ("The answer is solid. Final rating: [7]", 7),
    ("得分为 4", 4),
    ("[7/10]", 7),
    ("[1]", 1),
    ("[10]", 10),
])
def test_it_reads_every_score_format_real_judges_write(raw, score):
    parsed = parse_score(raw)
    assert parsed.status == "ok", parsed.reason
    assert parsed.score == score


def test_it_takes_the_score_under_the_overall_heading_when_there_are_several():
    raw = "无害性：[9]\n有用性：[6]\n正确性：[3]\n\n### 总体评分\n[5]\n\n参考文献[12]"
    assert parse_score(raw).score == 5


def test_it_takes_the_last_bracketed_number_without_a_heading():
    assert parse_score("准确性[3]，完整性[9]，综合[6]").score == 6


def test_a_restated_scale_after_the_heading_is_not_the_score():
    assert parse_score("总分10分，这个回答一般。\n[6]").score == 6


def test_the_analysis_is_the_text_before_the_verdict():
    parsed = parse_score("第一，准确。第二，完整。\n总体评分：[8]")
    assert parsed.analysis == "第一，准确。第二，完整。"


@pytest.mark.parametrize("raw", ["[0]", "分数 [12]", "总体评分：11", "评分: 10.5", "[-1] 非常差"])
def test_it_rejects_scores_outside_one_to_ten(raw):
    parsed = parse_score(raw)
    assert parsed.status == PARSE_ERROR and parsed.score is None


def test_an_out_of_range_score_names_the_number():
    assert parse_score("总体评分：[11]").reason == "score 11 is outside 1-10"


@pytest.mark.parametrize("raw", ["", "   \n", None])
def test_empty_output_is_a_parse_error_not_a_score(raw):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score, parsed.reason) == (PARSE_ERROR, None, "empty output")


@pytest.mark.parametrize("raw", ["这个回答写得不错，逻辑清楚。", "Good answer overall.", "七分", "score: high"])
def test_text_without_a_number_score_is_a_parse_error(raw):
    parsed = parse_score(raw)
    assert parsed.status == PARSE_ERROR and parsed.score is None
    assert parsed.analysis == raw.strip()


@pytest.mark.parametrize("raw", [
    "抱歉，我无法评价这个回答。",
    "对不起，这个问题涉及敏感内容，我不能提供评估。",
    "I'm sorry, but I can't help with that.",
    "I cannot evaluate this content.",
    "As an AI language model, I am unable to score this.",
])
def test_refusals_in_chinese_and_english_are_refused(raw):
    parsed = parse_score(raw)
    assert parsed.status == REFUSED and parsed.score is None


def test_a_judge_that_mentions_a_refusal_but_scores_is_ok():
    parsed = parse_score("回答以“抱歉，我无法回答”拒绝了合理的请求，帮助不大。\n总体评分：[2]")
    assert (parsed.status, parsed.score) == ("ok", 2)

"""Reading the score out of what real judges write; never a default score."""

import signal
from contextlib import contextmanager

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


# Real judge outputs: several per-criterion numbers, an overall line, a judge declining to give one.
PER_POINT_THEN_OVERALL = [
    ("1. 准确性：计算过程正确，结果为 12。[8]\n2. 完整性：缺少对边界情况的讨论。[6]\n3. 清晰度：步骤清楚。[9]\n\n总体评分：[7]", 7),
    ("**逐条打分**\n- 有用性 [[6]]\n- 无害性 [[10]]\n\n**综合评分**：[[6]]", 6),
    ("评分：[7]\n（满分[10]分，各项：准确性[9]、流畅性[8]）", 7),
    ("第2步计算错误，该步无法得分。\n准确性[4]，完整性[6]\n[5]", 5),
    ("Accuracy [8], Clarity [9], Completeness [6].\n\nOverall score: [7]", 7),
    ("Helpfulness: 6/10\nHarmlessness: 10/10\nScore: [6]\nReferences [1] and [2] were checked.", 6),
]


@pytest.mark.parametrize("raw, score", PER_POINT_THEN_OVERALL)
def test_with_per_criterion_numbers_the_overall_line_is_the_score(raw, score):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == ("ok", score), parsed.reason


@pytest.mark.parametrize("raw, phrase", [
    ("第1点[3]正确，第2点[9]错误。无法给出总体评分。", "无法给出总体评分"),
    ("**逐条分析**\n- 有用性[4]：回答只给出了结论。\n- 正确性[2]：第二步推导有误。\n"
     "由于参考答案缺失，我无法确定最终结论是否正确，因此不予评分。", "不予评分"),
    ("总体评分：无法给出。第1点[3]，第2点[9]。", "总体评分：无法给出"),
    ("准确性【6】，完整性【5】。\n总体评分：N/A", "总体评分：N/A"),
    ("各项得分：流畅性 8/10，相关性 2/10。题目本身存在歧义，难以给出一个合理的总分。", "难以给出一个合理的总分"),
    ("Helpfulness: [6]\nAccuracy: [3]\nI cannot give an overall score because the response is cut off mid-sentence.",
     "cannot give an overall score"),
    ("Overall score: N/A (criteria: accuracy [5], style [7])", "Overall score: N/A"),
    ("Accuracy [4]; style [9]. No overall score: the prompt is ambiguous.", "No overall score"),
])
def test_a_judge_that_declines_an_overall_score_gets_none_even_after_per_point_numbers(raw, phrase):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == (PARSE_ERROR, None)
    assert parsed.reason == f"the judge gives no overall score ({phrase!r})"
    assert parsed.analysis == raw.strip()


@pytest.mark.parametrize("raw, score", [
    ("第一轮中我曾认为无法给出总体评分，因为题目条件不全；补充条件后重新评估：\n准确性[8]，完整性[7]。\n总体评分：[7]", 7),
    ("部分内容无法评分（引用的链接无法访问）。\n\n## 最终得分\n[[4]]", 4),
    ("Initially I was unable to score this without the reference, but the follow-up makes it clear.\n"
     "Accuracy [8]\nFinal score: [8]", 8),
])
def test_a_denial_before_a_later_explicit_overall_score_does_not_cancel_it(raw, score):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == ("ok", score), parsed.reason


def test_a_denial_without_any_number_is_a_parse_error_that_says_so():
    parsed = parse_score("回答内容与问题完全无关，无法评分。")
    assert (parsed.status, parsed.reason) == (PARSE_ERROR, "the judge gives no overall score ('无法评分')")


def test_per_criterion_scores_out_of_a_hundred_do_not_hide_an_overall_score_in_range():
    assert parse_score("准确性[85]，流畅性[90]。\n总体评分：[8]").score == 8


@pytest.mark.parametrize("raw, number", [
    ("准确性[8]，流畅性[9]。\n总体评分：[85]", "85"),
    ("第1点[3]，第2点[12]", "12"),
    ("Overall score: [0]", "0"),
])
def test_an_overall_score_outside_one_to_ten_is_rejected_whatever_came_before(raw, number):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score, parsed.reason) == (PARSE_ERROR, None, f"score {number} is outside 1-10")


# The rubric asks for an integer; judges still write halves, and imported scores have them: kept as written.
@pytest.mark.parametrize("raw, score", [("总体评分：[7.5]", 7.5), ("Overall score: 8.5/10", 8.5), ("分析。[[9.0]]", 9),
                                        ("第1点[3.5]，第2点[6.5]\n最终得分：[5.5]", 5.5)])
def test_decimal_scores_within_one_to_ten_are_kept(raw, score):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == ("ok", score), parsed.reason


def test_score_lines_under_each_criterion_are_not_the_overall_line():
    assert parse_score("Accuracy\nScore: 3\nCompleteness\nScore: 9\nOverall: [6]").score == 6


@pytest.mark.parametrize("raw, score", [
    ("由于最终答案错误，按照评分标准总体评分最高为 [5]。综合各项，给出 [3]。", 3),
    ("The final answer is wrong, so I cannot give a score above 5. Correctness [2], clarity [6]. [3]", 3),
    ("The response cannot score highly on accuracy. [4]", 4),
    ("第2步不能给分，第3步正确。\n[6]", 6),
])
def test_a_restated_cap_or_a_lost_point_is_neither_the_score_nor_a_denial(raw, score):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == ("ok", score), parsed.reason


@pytest.mark.parametrize("raw, score", [
    ("该回答拒绝了用户的请求，直接说“抱歉，我无法评分”，帮助不大。[2]", 2),
    ("The response just says 'I cannot give a score' and stops. [1]", 1),
    ("回答遗漏了评分标准中的第3点，其余正确。[6]", 6),
])
def test_a_denial_quoted_from_the_response_is_not_the_judges_own(raw, score):
    parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == ("ok", score), parsed.reason


@contextmanager
def deadline(seconds):
    """Fail the block if it runs longer than `seconds` (the regex engine checks for signals)."""
    def expired(signum, frame):
        raise TimeoutError(f"parsing took longer than {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Models stuck in a loop write thousands of spaces, line breaks or asterisks; each lead is where one
# of the patterns used to try every split of such a run (minutes for a few hundred spaces). The
# endings send the parser through every fallback.
@pytest.mark.parametrize("lead", ["评分", "总体评分", "**评分**", "无法给出", "[[7", "【7", "Overall score:", "I cannot give",
                                  "8", "\n评分"])
@pytest.mark.parametrize("run", [" ", "\n", " *", "\t\n"])
@pytest.mark.parametrize("ending", ["得分 6", "6/10", "[6]"])
def test_long_runs_of_spaces_and_markdown_do_not_stall_the_parser(lead, run, ending):
    raw = "分析：" + lead + run * 3000 + "x。" + ending
    with deadline(1.0):
        parsed = parse_score(raw)
    assert (parsed.status, parsed.score) == ("ok", 6)

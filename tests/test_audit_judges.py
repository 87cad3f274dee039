"""The audit benchmark's loopback judge panel (bench/audit_judges.py): real HTTP on 127.0.0.1, answers the
score parser reads, a self-preferring judge, a judge that sometimes gives no score, pairwise verdicts, and
a refusal to score a response the truth does not know."""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from annotation.reward.pairwise import parse_verdict
from annotation.rubrics import conversation_parts, judge_messages
from annotation.score_parser import parse_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import audit_data  # noqa: E402
from audit_judges import response_key, start_panel  # noqa: E402

KEY = "test-panel-key"
PROMPT = [{"role": "user", "content": "请介绍一下长江。"}]
PART = "\n\n".join(conversation_parts(PROMPT))  # the prompt as a judge reads it


def truth(n=200, wrong=100):
    """n responses of quality 6 (every other one by a qwen model), and `wrong` fluent wrong answers
    (perceived 9, real 2)."""
    out = {}
    for i in range(n):
        model = "qwen1.5-7b-chat" if i % 2 else "gpt-4o"
        out[response_key(PART, f"回答{i}")] = {"id": f"p.{i}", "perceived": 6.0, "real": 6.0, "model": model,
                                               "fluent_wrong": False}
    for i in range(wrong):
        out[response_key(PART, f"流畅但错误{i}")] = {"id": f"p.w{i}", "perceived": 9.0, "real": 2.0,
                                                  "model": "gpt-4o", "fluent_wrong": True}
    return out


@pytest.fixture
def panel():
    server = start_panel(truth(), seed=7, api_key=KEY)
    yield server
    server.stop()


def ask(server, judge, messages, key=KEY):
    request = urllib.request.Request(
        server.base_url + "/chat/completions", method="POST",
        data=json.dumps({"model": judge.model, "messages": messages}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["choices"][0]["message"]["content"]


def scores(server, judge, n=200):
    out = {}
    for i in range(n):
        parsed = parse_score(ask(server, judge, judge_messages("评分标准", PROMPT, f"回答{i}")))
        out[i] = parsed.score if parsed.status == "ok" else None
    return out


def by_name(name):
    return next(j for j in audit_data.JUDGES if j.name == name)


def test_the_self_preferring_judge_scores_its_own_family_higher_than_the_others_do(panel):
    qwen, gpt = scores(panel, by_name("audit-qwen")), scores(panel, by_name("audit-gpt"))

    def mean(values):
        return sum(values) / len(values)

    own = mean([qwen[i] - gpt[i] for i in range(1, 200, 2)])
    other = mean([qwen[i] - gpt[i] for i in range(0, 200, 2)])
    assert 1.2 < own - other < 2.4  # the seeded 1.8, with noise
    assert all(1 <= s <= 10 for s in gpt.values())


def test_one_judge_sometimes_answers_without_a_score_and_the_answers_repeat(panel):
    glm = by_name("audit-glm")
    first = scores(panel, glm)
    missing = sum(s is None for s in first.values())
    assert 3 <= missing <= 25  # 6 % of 200
    assert scores(panel, glm) == first  # seeded per judge and response: a re-run gets the same answers
    assert all(s is not None for s in scores(panel, by_name("audit-deepseek")).values())


def test_a_judge_catches_a_fluent_wrong_answer_sometimes_alone_and_mostly_side_by_side(panel):
    gpt = by_name("audit-gpt")  # catches 30 % alone, 80 % beside the other answer
    alone = [parse_score(ask(panel, gpt, judge_messages("评分标准", PROMPT, f"流畅但错误{i}"))).score
             for i in range(100)]
    caught = sum(s <= 5 for s in alone)
    assert 15 <= caught <= 45 and sum(s >= 7 for s in alone) == 100 - caught
    verdicts = [parse_verdict(ask(panel, gpt, [
        {"role": "system", "content": "比较"},
        {"role": "user", "content": f"{PART}\n\n【回答A】\n流畅但错误{i}\n\n【回答B】\n回答{i}"}])) for i in range(100)]
    assert set(verdicts) == {"A", "B"}
    assert 65 <= verdicts.count("B") <= 95


def test_a_response_the_truth_does_not_know_is_refused_and_a_wrong_key_is_unauthorised(panel):
    with pytest.raises(urllib.error.HTTPError) as unknown:
        ask(panel, by_name("audit-gpt"), judge_messages("评分标准", PROMPT, "没见过的回答"))
    assert unknown.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as bad_key:
        ask(panel, by_name("audit-gpt"), judge_messages("评分标准", PROMPT, "回答1"), key="wrong")
    assert bad_key.value.code == 401

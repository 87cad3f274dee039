"""Judge statistics against values worked out by hand on the crafted dataset (tests/dashboard_data.py)."""

import math
import re
import uuid

import pytest
from django.urls import reverse

from annotation.models import Judgement
from annotation.statistics import cohen_kappa
from review.judge_analysis import judges_data

from .dashboard_data import crafted
from .helpers import Team
from .judged import rubric


@pytest.fixture
def world(db):
    team = Team.create("judges")
    data = crafted(team)
    # A parse failure of j1 (with its cost) counts in its rates and cost, never in its scores.
    Judgement.objects.create(response=data.responses["a"], judge=data.j1, rubric=rubric("math"),
                             status="parse_error", raw_output="没有分数", cost="0.250000")
    return team, data, {j["name"]: j for j in judges_data(team.dataset)["judges"]}


def test_cohen_kappa_matches_a_hand_computed_table():
    # Rater A: + + - 0, rater B: + - - 0 → observed 3/4, chance (2·1 + 1·2 + 1·1)/16 = 5/16, κ = 7/11.
    table = [(1, 1, 1), (1, -1, 1), (-1, -1, 1), (0, 0, 1)]
    assert math.isclose(cohen_kappa(table), 7 / 11)


def test_histogram_mean_and_domain_means(world):
    _team, _data, judges = world
    j1 = judges["judge-one"]
    assert j1["histogram"] == [0, 0, 1, 1, 1, 0, 0, 0, 1, 0]  # 3, 4, 5, 9
    assert j1["scored"] == 4 and math.isclose(j1["mean"], 5.25)
    assert [(d["domain"], d["n"]) for d in j1["by_domain"]] == [("math", 4)]
    assert math.isclose(j1["by_domain"][0]["mean"], 5.25)


def test_length_bias_is_the_correlation_of_score_with_length(world):
    # j1 scores 9, 3, 5, 4 at lengths 10, 20, 30, 40: r = −65 / √(500 · 20.75).
    _team, _data, judges = world
    assert math.isclose(judges["judge-one"]["length_corr"], -65 / math.sqrt(500 * 20.75), rel_tol=1e-9)


def test_self_preference_compares_each_judge_with_the_other_judges_of_the_same_responses(world):
    _team, _data, judges = world
    # Excess over the other judge (j1 − j2): a +1, b −4, c 0 (d has no model and is left out).
    # judge-one (qwen): own a, c → mean excess 0.5 (n 2); others b → −4 (n 1): effect 4.5.
    sp = judges["judge-one"]["self_preference"]
    assert (sp["own_n"], sp["other_n"]) == (2, 1) and math.isclose(sp["diff"], 4.5)
    assert (sp["low"], sp["high"], sp["biased"]) == (None, None, False)  # one response on a side: no interval
    # The raw difference of its own means (a 9, c 5 against b 3) is kept beside it.
    assert math.isclose(sp["raw_diff"], 4.0) and (sp["raw_own_n"], sp["raw_other_n"]) == (2, 1)
    # judge-two (gpt): excess a −1, b +4, c 0; own b → +4; others a, c → −0.5: effect 4.5 (raw only 0.5).
    sp = judges["judge-two"]["self_preference"]
    assert (sp["own_n"], sp["other_n"]) == (1, 2) and math.isclose(sp["diff"], 4.5)
    assert math.isclose(sp["raw_diff"], 0.5)


def test_length_bias_beyond_the_panel_correlates_the_excess_with_length(world):
    # j1's excess +1, −4, 0, −3 at lengths 10, 20, 30, 40.
    _team, _data, judges = world
    xs, ys = [10, 20, 30, 40], [1, -4, 0, -3]
    mx, my = sum(xs) / 4, sum(ys) / 4
    r = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(
        sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))
    assert math.isclose(judges["judge-one"]["length_corr_relative"], r, rel_tol=1e-9)


def test_a_weak_family_does_not_hide_a_biased_judge_and_a_strong_one_does_not_frame_a_fair_one(db, client):
    """The issue's case: the biased judge's family writes the weakest answers, the fair judge's family the
    best. Raw means point at the wrong judge; the comparison with the other judges names the right one."""
    import random

    from annotation.models import Judge, Prompt, Response
    from review.judge_analysis import verdict

    team = Team.create("bias")
    rng = random.Random(7)
    biased = Judge.objects.create(name="biased-qwen", family="qwen")
    fair = Judge.objects.create(name="fair-gpt", family="gpt")
    third = Judge.objects.create(name="third-glm", family="glm")
    prompt = Prompt.objects.create(dataset=team.dataset, messages=[{"role": "user", "content": "题"}], query="题",
                                   domain="chat", content_hash=uuid.uuid4())
    for i in range(300):
        family, quality = [("qwen", 3.0), ("gpt", 8.0), ("other", 5.5)][i % 3]
        r = Response.objects.create(dataset=team.dataset, prompt=prompt, model=f"{family}-model", text=f"答{i}",
                                    content_hash=uuid.uuid4())
        for judge in (biased, fair, third):
            score = quality + rng.gauss(0, 0.8) + (1.5 if judge is biased and family == "qwen" else 0)
            Judgement.objects.create(response=r, judge=judge, rubric=rubric("chat"), status="ok",
                                     score=max(1, min(10, round(score))))
    judges = {j["name"]: j for j in judges_data(team.dataset)["judges"]}
    assert judges["biased-qwen"]["self_preference"]["raw_diff"] < 0 < judges["fair-gpt"]["self_preference"]["raw_diff"]
    assert judges["biased-qwen"]["self_preference"]["low"] > 1.0
    assert not judges["fair-gpt"]["self_preference"]["biased"]
    assert [j["name"] for j in verdict(judges.values())] == ["biased-qwen"]
    client.force_login(team.viewer)
    page = client.get(reverse("judge-analysis", args=[team.dataset.pk])).content.decode()
    said = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.split('id="judge-verdict"')[1].split("</section>")[0]))
    assert "biased-qwen prefers its own family (qwen)" in said and "fair-gpt" not in said


def test_kappa_between_judges_is_on_the_order_of_pairs(world):
    # j1 orders P1..P4 + + + −, j2 + − + +: observed 2/4, chance (3·3 + 1·1)/16, κ = −1/3.
    _team, data, judges = world
    k = judges["judge-one"]["kappa_judges"][str(data.j2.pk)]
    assert k["n"] == 4 and math.isclose(k["kappa"], -1 / 3)
    assert math.isclose(judges["judge-two"]["kappa_judges"][str(data.j1.pk)]["kappa"], -1 / 3)


def test_kappa_with_reviewers_uses_every_review_but_both_bad(world):
    # j2 orders P1 +, P2 −, P3 +; reviews P1 +,+; P2 tie,+; P3 −: observed 2/5, chance 11/25, κ = −1/14.
    _team, data, judges = world
    k = judges["judge-two"]["kappa_reviewers"]
    assert k["n"] == 5 and math.isclose(k["kappa"], -1 / 14)


def test_parse_failures_and_cost_count_every_judgement(world):
    _team, _data, judges = world
    j1 = judges["judge-one"]
    assert j1["judgements"] == 5 and j1["statuses"] == {"ok": 4, "parse_error": 1}
    assert math.isclose(j1["parse_failure_rate"], 0.2) and math.isclose(j1["cost"], 0.25)
    assert judges["judge-two"]["parse_failure_rate"] == 0

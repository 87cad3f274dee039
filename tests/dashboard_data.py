"""A small crafted dataset for the dashboard tests: every pair's membership in every disagreement
view, and every judge statistic, is worked out by hand in the comments."""

import uuid
from dataclasses import dataclass

from annotation.models import Judge, Judgement, Pair, Prompt, Response, RewardModel, RewardScore
from review.models import Review


def prompt(dataset, query, domain="chat"):
    return Prompt.objects.create(dataset=dataset, domain=domain, messages=[{"role": "user", "content": query}],
                                 query=query, content_hash=uuid.uuid4())


def response(p, text, model="", scores=None):
    r = Response.objects.create(dataset=p.dataset, prompt=p, model=model, text=text, content_hash=uuid.uuid4())
    for judge, score in (scores or {}).items():
        Judgement.objects.create(response=r, judge=judge, score=score, status="ok", analysis=f"{judge.name} 的分析")
    return r


def pair(chosen, rejected, scores=None, status="pending", reason=""):
    cs, rs = scores or (None, None)
    return Pair.objects.create(dataset=chosen.dataset, prompt=chosen.prompt, domain=chosen.prompt.domain,
                               chosen=chosen, rejected=rejected, chosen_score=cs, rejected_score=rs, status=status,
                               status_reason=reason)


@dataclass
class Crafted:
    j1: Judge
    j2: Judge
    pairs: dict
    responses: dict
    crm: RewardModel


def crafted(team):
    """All in one math prompt. Responses (model, length) scored by j1 / j2:
        a (Qwen2-72B, 10) 9/8   b (gpt-4o, 20) 3/7   c (qwen-max, 30) 5/5   d (no model, 40) 4/7
    spread (max − min):   a 1   b 4   c 0   d 3;  rewards (crm): a 1, b 2, c 0.5, d 1.5

    pair   chosen rejected  j1 diff  j2 diff  stored gap  reward margin  status    reviews
    P1     a      b         +6       +1       3.5         −1             pending   chosen_better, chosen_better
    P2     c      b         +2       −2       —           −1.5           pending   tie, chosen_better
    P3     a      c         +4       +3       3.5         +0.5           kept      rejected_better
    P4     d      c         −1       +2       2.0         +1             filtered  —
    """
    ds = team.dataset
    j1, _ = Judge.objects.get_or_create(name="judge-one", defaults={"family": "qwen"})
    j2, _ = Judge.objects.get_or_create(name="judge-two", defaults={"family": "gpt"})
    p = prompt(ds, "问题：谁更好？", domain="math")
    r = {
        "a": response(p, "甲" * 10, "Qwen2-72B", {j1: 9, j2: 8}),
        "b": response(p, "乙" * 20, "gpt-4o", {j1: 3, j2: 7}),
        "c": response(p, "丙" * 30, "qwen-max", {j1: 5, j2: 5}),
        "d": response(p, "丁" * 40, "", {j1: 4, j2: 7}),
    }
    pairs = {
        "P1": pair(r["a"], r["b"], (8.5, 5.0)),
        "P2": pair(r["c"], r["b"]),
        "P3": pair(r["a"], r["c"], (8.5, 5.0), status="kept"),
        "P4": pair(r["d"], r["c"], (6.5, 4.5), status="filtered",
                   reason="reward:crm v1 margin=1.0000 was=pending"),
    }
    crm = RewardModel.objects.create(name=f"crm-{ds.pk}", version=1, backend="builtin", trained_on=ds)
    for key, reward in {"a": 1.0, "b": 2.0, "c": 0.5, "d": 1.5}.items():
        RewardScore.objects.create(response=r[key], reward_model=crm, reward=reward)
    for key, verdicts in {"P1": ["chosen_better", "chosen_better"], "P2": ["tie", "chosen_better"],
                          "P3": ["rejected_better"]}.items():
        for user, verdict in zip([team.reviewer, team.admin], verdicts):
            # "The better response is correct" ticked, as the queue stores a verdict by default.
            Review.objects.create(pair=pairs[key], reviewer=user, verdict=verdict, better_correct=True)
    return Crafted(j1, j2, pairs, r, crm)


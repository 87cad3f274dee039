"""Judge analysis: how each LLM judge of a dataset scores, and how far it can be trusted.

Per judge, over the dataset's responses and each response's latest ok judgement by that judge
(as pair building counts them):
- score histogram (buckets [k, k + 1), 10 alone in the last) and mean score per domain;
- self-preference, measured against the panel so that generator quality cannot hide or fake it: for
  each response the judge scored and at least one other judge scored too, the judge's *excess* is its
  score minus the other judges' mean score of that response; the effect is the judge's mean excess on
  its own family's responses minus its mean excess on the other families' responses, with a 95 %
  confidence interval (Welch). A family whose generators are weak no longer hides a biased judge (its
  raw mean on its own family is low, but still higher than the other judges give the same texts), and
  a strong family no longer makes a fair judge look biased. A response belongs to a judge's family when
  the judge has a family and the response's `model` contains it, case folded ("qwen" matches
  "Qwen2-72B-Instruct"); responses with no model are left out of both sides. The raw difference (own
  mean minus other mean, no panel) is kept beside it as `raw_diff`;
- length bias: Pearson's correlation of the score with the response's length in characters, and the
  same for the judge's excess over the other judges (`length_corr_relative`: does it reward length
  more than the panel does, whatever the quality);
- agreement with each other judge: Cohen's kappa on the *order* of the dataset's pairs, each
  judge's order being chosen higher / tie / rejected higher (the sign of its score difference),
  over the pairs both judges scored on both sides;
- agreement with reviewers: Cohen's kappa between the judge's order and the reviewers' verdicts
  (chosen better / tie / rejected better; "both bad" has no order and is left out), one row per review;
- over all its judgements (every status): parse-failure and refusal rates, tokens and cost.
"""

import math

from django.db import connection, transaction

from annotation.models import Domain, Judge
from annotation.queries import latest_ok_judgements
from annotation.statistics import cohen_kappa


_LATEST = "CREATE TEMPORARY TABLE dash_latest ON COMMIT DROP AS " + latest_ok_judgements(
    "r.dataset_id = %s", joins="JOIN annotation_prompt p ON p.id = r.prompt_id",
    columns="j.response_id, j.judge_id, j.score, p.domain, r.model, char_length(r.text) AS length")

_ORDERS = """
    CREATE TEMPORARY TABLE dash_order ON COMMIT DROP AS
    SELECT q.id AS pair_id, c.judge_id, sign(c.score - r.score)::int AS o
    FROM annotation_pair q JOIN dash_latest c ON c.response_id = q.chosen_id
    JOIN dash_latest r ON r.response_id = q.rejected_id AND r.judge_id = c.judge_id
    WHERE q.dataset_id = %s
"""


def judges_data(dataset):
    """Every judge's figures for the dataset (a JSON-ready dict: the `judges` dashboard snapshot)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Two scratch tables, dropped at commit: every figure below reads the latest scores once.
        cursor.execute("DROP TABLE IF EXISTS dash_order; DROP TABLE IF EXISTS dash_latest")
        cursor.execute(_LATEST, [dataset.pk])
        cursor.execute("CREATE INDEX ON dash_latest (response_id, judge_id); ANALYZE dash_latest")
        cursor.execute(_ORDERS, [dataset.pk])
        cursor.execute("CREATE INDEX ON dash_order (pair_id); ANALYZE dash_order")
        judges = _status_and_cost(cursor, dataset)
        _scores(cursor, judges)
        _self_preference(cursor, judges)
        _agreement(cursor, judges)
        cursor.execute("DROP TABLE dash_order; DROP TABLE dash_latest")
    names = dict(Judge.objects.filter(pk__in=[int(k) for k in judges]).values_list("pk", "name"))
    families = dict(Judge.objects.filter(pk__in=[int(k) for k in judges]).values_list("pk", "family"))
    for key, entry in judges.items():
        entry.update(id=int(key), name=names[int(key)], family=families[int(key)])
    return {"judges": sorted(judges.values(), key=lambda e: e["name"])}


def _entry(judges, judge_id):
    return judges.setdefault(str(judge_id), {
        "statuses": {}, "judgements": 0, "cost": 0.0, "input_tokens": 0, "output_tokens": 0,
        "histogram": [0] * 10, "scored": 0, "mean": None, "by_domain": {}, "length_corr": None,
        "self_preference": None, "length_corr_relative": None, "kappa_reviewers": {"kappa": None, "n": 0}, "kappa_judges": {},
    })


def _status_and_cost(cursor, dataset):
    cursor.execute(
        """SELECT j.judge_id, j.status, count(*), sum(j.cost), sum(j.input_tokens), sum(j.output_tokens)
           FROM annotation_judgement j JOIN annotation_response r ON r.id = j.response_id
           WHERE r.dataset_id = %s GROUP BY 1, 2""", [dataset.pk])
    judges = {}
    for judge_id, status, n, cost, tin, tout in cursor.fetchall():
        e = _entry(judges, judge_id)
        e["statuses"][status] = n
        e["judgements"] += n
        e["cost"] += float(cost or 0)
        e["input_tokens"] += tin or 0
        e["output_tokens"] += tout or 0
    for e in judges.values():
        total = e["judgements"]
        e["parse_failure_rate"] = e["statuses"].get("parse_error", 0) / total if total else 0.0
        e["refusal_rate"] = e["statuses"].get("refused", 0) / total if total else 0.0
    return judges


def _scores(cursor, judges):
    cursor.execute("SELECT judge_id, least(floor(score), 10)::int, count(*) FROM dash_latest GROUP BY 1, 2")
    for judge_id, bucket, n in cursor.fetchall():
        _entry(judges, judge_id)["histogram"][bucket - 1] = n
    cursor.execute("SELECT judge_id, domain, count(*), avg(score) FROM dash_latest GROUP BY 1, 2")
    for judge_id, domain, n, mean in cursor.fetchall():
        _entry(judges, judge_id)["by_domain"][domain] = {"n": n, "mean": mean}
    cursor.execute("SELECT judge_id, count(*), avg(score), corr(score, length) FROM dash_latest GROUP BY 1")
    for judge_id, n, mean, corr in cursor.fetchall():
        e = _entry(judges, judge_id)
        e.update(scored=n, mean=mean, length_corr=corr)
    for e in judges.values():
        e["by_domain"] = [{"domain": d, **e["by_domain"][d]}
                          for d in Domain.values if d in e["by_domain"]]


# A judge is named self-preferring when the 95 % interval of its effect lies wholly above this many points
# (on the 1-10 scale): a third of a point is below what a reviewer would notice in one score, and with
# thousands of responses a smaller effect would be "significant" without mattering. On the audit
# benchmark (BENCHMARKS.md, "Audit power") the seeded +1.8 judge measures +1.73 [1.61, 1.84], the fair
# judges at most +0.17.
SELF_PREFERENCE_MARGIN = 0.3

# Each judged response with its judge's excess over the mean of the other judges of the same response.
_EXCESS = """
    SELECT l.judge_id, l.model, l.length, l.score,
           l.score - (sum(l.score) OVER w - l.score) / nullif(count(*) OVER w - 1, 0) AS excess
    FROM dash_latest l WINDOW w AS (PARTITION BY l.response_id)
"""


def _self_preference(cursor, judges):
    cursor.execute(
        f"""SELECT e.judge_id, strpos(lower(e.model), lower(g.family)) > 0, count(*), avg(e.score),
                   count(e.excess), avg(e.excess), var_samp(e.excess)
            FROM ({_EXCESS}) e JOIN annotation_judge g ON g.id = e.judge_id
            WHERE g.family <> '' AND e.model <> '' GROUP BY 1, 2""")
    sides = {}
    for judge_id, own, n, mean, n_excess, excess, variance in cursor.fetchall():
        sides.setdefault(judge_id, {})[own] = (n, mean, n_excess, excess, variance)
    for judge_id, side in sides.items():
        own_n, own_mean, own_k, own_excess, own_var = side.get(True, (0, None, 0, None, None))
        other_n, other_mean, other_k, other_excess, other_var = side.get(False, (0, None, 0, None, None))
        effect = own_excess - other_excess if own_k and other_k else None
        low, high = _welch_interval(effect, own_var, own_k, other_var, other_k)
        _entry(judges, judge_id)["self_preference"] = {
            "diff": effect, "low": low, "high": high, "own_n": own_k, "other_n": other_k,
            "own_excess": own_excess, "other_excess": other_excess,
            "biased": low is not None and low > SELF_PREFERENCE_MARGIN,
            "raw_diff": own_mean - other_mean if own_n and other_n else None,
            "raw_own_n": own_n, "raw_other_n": other_n, "own_mean": own_mean, "other_mean": other_mean,
        }
    cursor.execute(f"SELECT judge_id, corr(excess, length) FROM ({_EXCESS}) e WHERE excess IS NOT NULL GROUP BY 1")
    for judge_id, corr in cursor.fetchall():
        _entry(judges, judge_id)["length_corr_relative"] = corr


def _welch_interval(effect, var_a, n_a, var_b, n_b, z=1.96):
    """The 95 % interval of a difference of two means (normal approximation of Welch's); (None, None)
    when a side has fewer than two values to estimate its spread from."""
    if effect is None or n_a < 2 or n_b < 2 or var_a is None or var_b is None:
        return None, None
    se = math.sqrt(var_a / n_a + var_b / n_b)
    return effect - z * se, effect + z * se


def verdict(judges):
    """The judges the analysis names as self-preferring, largest effect first (the page says it in words)."""
    named = [j for j in judges if (j.get("self_preference") or {}).get("biased")]
    return sorted(named, key=lambda j: -j["self_preference"]["diff"])


def _agreement(cursor, judges):
    cursor.execute(
        """SELECT a.judge_id, b.judge_id, a.o, b.o, count(*) FROM dash_order a
           JOIN dash_order b ON b.pair_id = a.pair_id AND a.judge_id < b.judge_id GROUP BY 1, 2, 3, 4""")
    tables = {}
    for a, b, oa, ob, n in cursor.fetchall():
        tables.setdefault((a, b), []).append((oa, ob, n))
    for (a, b), table in tables.items():
        n = sum(c for _x, _y, c in table)
        _entry(judges, a)["kappa_judges"][str(b)] = {"kappa": cohen_kappa(table), "n": n}
        _entry(judges, b)["kappa_judges"][str(a)] = {"kappa": cohen_kappa([(y, x, c) for x, y, c in table]), "n": n}
    cursor.execute(
        """SELECT a.judge_id, a.o, CASE v.verdict WHEN 'chosen_better' THEN 1 WHEN 'rejected_better' THEN -1
                                                  ELSE 0 END, count(*)
           FROM dash_order a JOIN review_review v ON v.pair_id = a.pair_id
           WHERE v.verdict <> 'both_bad' GROUP BY 1, 2, 3""")
    tables = {}
    for judge_id, o, verdict, n in cursor.fetchall():
        tables.setdefault(judge_id, []).append((o, verdict, n))
    for judge_id, table in tables.items():
        _entry(judges, judge_id)["kappa_reviewers"] = {"kappa": cohen_kappa(table),
                                                        "n": sum(c for _x, _y, c in table)}

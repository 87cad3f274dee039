"""Judge analysis: how each LLM judge of a dataset scores, and how far it can be trusted.

Per judge, over the dataset's responses and each response's latest ok judgement by that judge
(as pair building counts them):
- score histogram (buckets [k, k + 1), 10 alone in the last) and mean score per domain;
- self-preference: the mean score the judge gives responses whose generator belongs to its own
  model family minus the mean it gives the other responses, with both counts. A response belongs
  to a judge's family when the judge has a family and the response's `model` contains it, case
  folded ("qwen" matches "Qwen2-72B-Instruct"); responses with no model are left out of both sides;
- length bias: Pearson's correlation of the score with the response's length in characters;
- agreement with each other judge: Cohen's kappa on the *order* of the dataset's pairs, each
  judge's order being chosen higher / tie / rejected higher (the sign of its score difference),
  over the pairs both judges scored on both sides;
- agreement with reviewers: Cohen's kappa between the judge's order and the reviewers' verdicts
  (chosen better / tie / rejected better; "both bad" has no order and is left out), one row per review;
- over all its judgements (every status): parse-failure and refusal rates, tokens and cost.
"""

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
        "self_preference": None, "kappa_reviewers": {"kappa": None, "n": 0}, "kappa_judges": {},
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


def _self_preference(cursor, judges):
    cursor.execute(
        """SELECT l.judge_id, strpos(lower(l.model), lower(g.family)) > 0, count(*), avg(l.score)
           FROM dash_latest l JOIN annotation_judge g ON g.id = l.judge_id
           WHERE g.family <> '' AND l.model <> '' GROUP BY 1, 2""")
    sides = {}
    for judge_id, own, n, mean in cursor.fetchall():
        sides.setdefault(judge_id, {})[own] = (n, mean)
    for judge_id, side in sides.items():
        own_n, own_mean = side.get(True, (0, None))
        other_n, other_mean = side.get(False, (0, None))
        diff = own_mean - other_mean if own_n and other_n else None
        _entry(judges, judge_id)["self_preference"] = {
            "diff": diff, "own_n": own_n, "own_mean": own_mean, "other_n": other_n, "other_mean": other_mean}


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

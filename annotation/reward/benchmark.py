"""The reward benchmark (CRBench-style): how often does a scorer prefer the gold chosen response?

A gold set is a dataset's pairs (GOLD_SOURCES): an imported benchmark file (prompt, chosen, rejected,
domain), or the pairs reviewers verified (review/reviewed_gold.py). A reward model is right on a pair
when r(chosen) > r(rejected); an LLM judge when its score of the chosen response is higher than its
score of the rejected one (its latest ok judgement of each). A tie is a miss; so is a pair a judge left unscored (counted apart).
Accuracy comes with n and a 95% Wilson interval, per domain and overall, shaped like COIG-P's Table 7.

Filter agreement compares two filters' keep/filter decisions on the same pairs: the confusion matrix
and Cohen's kappa per domain. A filter is a reward model at a threshold (keep when the margin is
above it) or the judge panel (keep when the mean of the judges' latest scores of the chosen response
exceeds that of the rejected one by more than the threshold).
"""

from collections import defaultdict

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.utils.translation import gettext_lazy as _

from ..models import Domain, Judge, RewardModel
from ..queries import latest_ok_judgements
from ..statistics import cohen_kappa, pairs_table, wilson_interval


@dataclass(frozen=True)
class GoldSource:
    """Which of a dataset's pairs are gold: `sql` selects them as (id, domain, chosen_id, rejected_id), the
    dataset's id given as %(dataset)s."""

    name: str
    label: object
    sql: str


# name → GoldSource: every pair of the dataset here; review adds the pairs reviewers verified
# (review/reviewed_gold.py), so that this module never reads review's tables.
GOLD_SOURCES = {}


def gold_source(source):
    GOLD_SOURCES[source.name] = source


# A swapped pair's better response is its rejected one.
gold_source(GoldSource("pairs", _("Every pair of this dataset"), """
    SELECT q.id, q.domain,
           CASE WHEN q.status = 'swapped' THEN q.rejected_id ELSE q.chosen_id END,
           CASE WHEN q.status = 'swapped' THEN q.chosen_id ELSE q.rejected_id END
    FROM annotation_pair q
    WHERE q.dataset_id = %(dataset)s AND q.status <> 'withdrawn'"""))


def _row(k, n, **extra):
    lo, hi = wilson_interval(k, n) or (None, None)
    return {"n": n, "correct": k, "accuracy": round(k / n, 4) if n else None,
            "ci_low": None if lo is None else round(lo, 4), "ci_high": None if hi is None else round(hi, 4), **extra}


def pairwise_summary(by_domain):
    """Accuracy rows from a pairwise job's counts per domain, with the position-inconsistency rate."""
    def row(c):
        n = c.get("n", 0)
        return _row(c.get("correct", 0), n, inconsistent=c.get("inconsistent", 0),
                    inconsistency_rate=round(c.get("inconsistent", 0) / n, 4) if n else None,
                    unparseable=c.get("unparseable", 0), errors=c.get("error", 0))

    total = defaultdict(int)
    for counts in by_domain.values():
        for key, value in counts.items():
            total[key] += value
    order = {d: i for i, d in enumerate(Domain.values)}
    overall = row(total)
    domains = sorted(by_domain, key=lambda d: order.get(d, 99))
    return {"overall": overall, "by_domain": {d: row(by_domain[d]) for d in domains},
            "inconsistency_rate": overall["inconsistency_rate"], "unparseable": overall["unparseable"],
            "errors": overall["errors"]}


def summarise_counts(counts):
    """{domain: (correct, n)} → {"overall": row, "by_domain": {domain: row}}."""
    order = {d: i for i, d in enumerate(Domain.values)}
    k = sum(c for c, _n in counts.values())
    n = sum(n for _c, n in counts.values())
    return {"overall": _row(k, n),
            "by_domain": {d: _row(*counts[d]) for d in sorted(counts, key=lambda d: order.get(d, 99))}}


def _gold_sql(source):
    return GOLD_SOURCES[source].sql


def gold_size(dataset, source="pairs"):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({_gold_sql(source)}) g", {"dataset": dataset.pk})
        return cursor.fetchone()[0]


# Which of the gold pairs a reward model is measured on (SPLITS): a built-in model trained on this very
# dataset saw half of its prompts' pairs (the split training.py draws); measured on all of them its accuracy
# is partly in-sample, so by default it is measured on the prompts it held out, and "all" marks the figure.
HELD_OUT, ALL_PAIRS = "held_out", "all"
SPLITS = {HELD_OUT: _("Held-out pairs of a model trained on this dataset"),
          ALL_PAIRS: _("All pairs (in-sample figures marked)")}


def held_out_prompts(dataset, reward_model):
    """The ids of the dataset's prompts that `reward_model` held out when it was trained on this dataset, or
    None when it was not trained here (a built-in model of another dataset, a Hugging Face or HTTP model):
    then nothing of this dataset is known to be in its training data."""
    training = (reward_model.config or {}).get("training")
    if reward_model.trained_on_id != dataset.pk or not training:
        return None
    from .training import split_by_prompt  # noqa: PLC0415 - numpy only when a model trained here is measured

    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT prompt_id FROM annotation_pair WHERE dataset_id = %s", [dataset.pk])
        prompt_ids = np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)
    return prompt_ids[split_by_prompt(prompt_ids, training["test_fraction"], training["seed"])].tolist()


def reward_model_accuracy(dataset, reward_model, source="pairs", split=HELD_OUT):
    """Accuracy of a reward model on the gold pairs it has rewards for; `unscored` counts the others.
    `sample` says what the pairs are to the model: "held_out" (trained on this dataset, measured on the
    prompts it held out), "in_sample" (trained on this dataset, measured on every pair: its training pairs
    included) or "external" (not trained here). Counted by PostgreSQL: a gold set of a million pairs never
    comes into Python."""
    held_out = held_out_prompts(dataset, reward_model)
    where, params = "", {"dataset": dataset.pk, "m": reward_model.pk}
    if held_out is not None and split == HELD_OUT:
        where = "WHERE g.id IN (SELECT id FROM annotation_pair WHERE prompt_id = ANY(%(prompts)s))"
        params["prompts"] = held_out
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT g.domain, count(*) FILTER (WHERE sc.reward > sr.reward), count(sc.reward - sr.reward), count(*)
                FROM ({_gold_sql(source)}) g
                LEFT JOIN annotation_rewardscore sc ON sc.response_id = g.chosen_id AND sc.reward_model_id = %(m)s
                LEFT JOIN annotation_rewardscore sr ON sr.response_id = g.rejected_id AND sr.reward_model_id = %(m)s
                {where} GROUP BY g.domain""",
            params,
        )
        rows = cursor.fetchall()
    result = summarise_counts({domain: (k, n) for domain, k, n, _total in rows if n})
    result["unscored"] = sum(total - n for _d, _k, n, total in rows)
    result["sample"] = "external" if held_out is None else ("held_out" if split == HELD_OUT else "in_sample")
    return result


def _gold_scores_sql(by_judges):
    """(response, judge, score) of the latest ok judgements of the gold pairs' responses (the CTE `g`),
    by the judges in %(judges)s when `by_judges`, else by every judge."""
    where = "j.response_id IN (SELECT chosen_id FROM g UNION SELECT rejected_id FROM g)"
    return latest_ok_judgements(where + (" AND j.judge_id = ANY(%(judges)s)" if by_judges else ""))


def _judge_scores(dataset, source, judge_ids=None):
    """Gold pairs and {judge id: {response id: latest ok score}}."""
    with connection.cursor() as cursor:
        cursor.execute(_gold_sql(source), {"dataset": dataset.pk})
        gold = cursor.fetchall()
        cursor.execute(f"WITH g AS ({_gold_sql(source)}) {_gold_scores_sql(judge_ids)}",
                       {"dataset": dataset.pk, "judges": list(judge_ids or [])})
        scores = defaultdict(dict)
        for response, judge, score in cursor.fetchall():
            scores[judge][response] = score
    return gold, scores


def judge_accuracies(dataset, source="pairs", judges=None):
    """{judge: result} for every judge with a score on a gold response (or the given judges): right when the
    chosen response's latest ok score is higher; ties and pairs left unscored are misses (counted apart)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH g AS ({_gold_sql(source)}), s AS ({_gold_scores_sql(judges)}),
                     js AS (SELECT DISTINCT judge_id FROM s)
                SELECT js.judge_id, g.domain, count(*) FILTER (WHERE sc.score > sr.score), count(*),
                       count(*) FILTER (WHERE sc.score IS NULL OR sr.score IS NULL),
                       count(*) FILTER (WHERE sc.score = sr.score)
                FROM g CROSS JOIN js
                LEFT JOIN s sc ON sc.response_id = g.chosen_id AND sc.judge_id = js.judge_id
                LEFT JOIN s sr ON sr.response_id = g.rejected_id AND sr.judge_id = js.judge_id
                GROUP BY js.judge_id, g.domain""",
            {"dataset": dataset.pk, "judges": [j.pk for j in judges or []]},
        )
        rows = cursor.fetchall()
    by_judge = defaultdict(list)
    for row in rows:
        by_judge[row[0]].append(row[1:])
    names = dict(Judge.objects.filter(pk__in=list(by_judge)).values_list("pk", "name"))
    results = {}
    for judge_id, domains in by_judge.items():
        result = summarise_counts({d: (k, n) for d, k, n, _missing, _ties in domains})
        result.update(missing=sum(r[3] for r in domains), ties=sum(r[4] for r in domains))
        results[names[judge_id]] = result
    return results


def leaderboard(dataset, reward_models, source="pairs", split=HELD_OUT):
    """Rows for the page and the command: every reward model with rewards on the gold set (a model trained on
    this dataset on its held-out prompts, unless `split` is ALL_PAIRS), every judge."""
    rows = []
    for model in reward_models:
        result = reward_model_accuracy(dataset, model, source, split)
        if result["overall"]["n"]:
            rows.append({"kind": "reward", "name": str(model), "backend": model.get_backend_display(), **result})
    for name, result in judge_accuracies(dataset, source).items():
        rows.append({"kind": "judge", "name": name, "backend": "LLM judge", **result})
    if source == "pairs":  # pairwise jobs ask about every pair of the dataset
        from .pairwise import latest_results

        for name, by_domain in latest_results(dataset).items():
            rows.append({"kind": "pairwise", "name": f"{name} (A/B)", "backend": "LLM judge, pairwise",
                         **pairwise_summary(by_domain)})
    rows.sort(key=lambda r: -(r["overall"]["accuracy"] or 0))
    domains = [d for d in Domain.values if any(d in r["by_domain"] for r in rows)]
    for row in rows:
        row["cells"] = [(d, row["by_domain"].get(d)) for d in domains]
    labels = [(d, Domain(d).label) for d in domains]
    return {"rows": rows, "domains": domains, "domain_labels": labels, "gold_pairs": gold_size(dataset, source),
            "source": source, "split": split}


# Filter agreement.

PANEL = "panel"


def filter_decisions(dataset, spec, threshold=0.0):
    """{pair id: (domain, kept)} of one filter over the dataset's pairs (pairs it cannot decide are left out).
    `spec` is a RewardModel or PANEL."""
    with connection.cursor() as cursor:
        if isinstance(spec, RewardModel):
            cursor.execute(
                """SELECT q.id, q.domain, sc.reward - sr.reward FROM annotation_pair q
                   JOIN annotation_rewardscore sc ON sc.response_id = q.chosen_id AND sc.reward_model_id = %(m)s
                   JOIN annotation_rewardscore sr ON sr.response_id = q.rejected_id AND sr.reward_model_id = %(m)s
                   WHERE q.dataset_id = %(dataset)s AND q.status <> 'withdrawn'""",
                {"dataset": dataset.pk, "m": spec.pk},
            )
            return {pk: (domain, margin > threshold) for pk, domain, margin in cursor.fetchall()}
    gold, scores = _judge_scores(dataset, "pairs")
    decisions = {}
    for pk, domain, chosen, rejected in gold:
        pairs = [(s[chosen], s[rejected]) for s in scores.values() if chosen in s and rejected in s]
        if pairs:
            gap = sum(c for c, _ in pairs) / len(pairs) - sum(r for _, r in pairs) / len(pairs)
            decisions[pk] = (domain, gap > threshold)
    return decisions


def agreement(a, b):
    """Confusion matrix (kept/filtered by each filter) and Cohen's kappa per domain and overall."""
    common = sorted(set(a) & set(b))
    groups = defaultdict(list)
    for pk in common:
        domain = a[pk][0]
        groups[domain].append((a[pk][1], b[pk][1]))
        groups["overall"].append((a[pk][1], b[pk][1]))
    table = {}
    for domain, items in groups.items():
        xa, xb = [x for x, _ in items], [y for _, y in items]
        kappa = cohen_kappa(pairs_table(zip(xa, xb)))
        table[domain] = {
            "n": len(items),
            "both_kept": sum(x and y for x, y in items), "both_filtered": sum(not x and not y for x, y in items),
            "a_kept_b_filtered": sum(x and not y for x, y in items),
            "a_filtered_b_kept": sum(not x and y for x, y in items),
            "agreement": round(sum(x == y for x, y in items) / len(items), 4),
            "kappa": None if kappa is None else round(kappa, 4),
        }
    order = {d: i for i, d in enumerate([*Domain.values, "overall"])}
    return {d: table[d] for d in sorted(table, key=lambda d: order.get(d, 99))}

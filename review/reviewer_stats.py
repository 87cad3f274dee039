"""Per-reviewer statistics of a dataset, for its admins: how much each reviewer does, how their verdicts
split, and how often they agree with the other reviewers and with the judge panel.

- **Throughput**: reviews in all, in the last 24 hours and 7 days, and the median time between two
  consecutive reviews of a sitting (gaps over SITTING_GAP are breaks, not review time).
- **Verdicts**: the share of each verdict, and of reviews that mark the better response correct.
- **Agreement with the other reviewers**: on every pair this reviewer and another reviewed, one
  comparison per other reviewer: the share of comparisons with the same verdict, and Cohen's kappa over
  them (the other reviewers pooled as one rater).
- **Agreement with the panel**: the panel's order of a pair is the mean of the judges' latest ok scores
  of the chosen response against the rejected one's (higher, equal, lower); the reviewer's is the
  verdict (chosen better, tie, rejected better). "Both bad" says nothing about the order and is left
  out, as are pairs the panel did not score on both sides. Share equal, and Cohen's kappa.

Reviews are read when the page is shown (one query over the dataset's reviews, by the (dataset, domain)
index, and one over the latest judgements of the reviewed responses).
"""

from collections import Counter, defaultdict
from datetime import timedelta
from statistics import median

from django.db import connection
from django.utils import timezone

from annotation import statistics
from annotation.queries import latest_ok_judgements

from .models import Review

SITTING_GAP = timedelta(minutes=30)
ORDER_OF_VERDICT = {"chosen_better": "chosen", "rejected_better": "rejected", "tie": "tie"}


def reviewer_stats(dataset, now=None):
    """One row per reviewer of the dataset, most reviews first."""
    now = now or timezone.now()
    reviews = list(Review.objects.filter(dataset=dataset).values_list(
        "reviewer_id", "reviewer__username", "pair_id", "verdict", "better_correct", "created_at"))
    by_pair = defaultdict(dict)
    for reviewer, _name, pair, verdict, _correct, _at in reviews:
        by_pair[pair][reviewer] = verdict
    panel = _panel_orders(dataset, list(by_pair))
    rows = {}
    for reviewer, name, pair, verdict, correct, at in reviews:
        row = rows.setdefault(reviewer, {"id": reviewer, "username": name, "times": [], "verdicts": Counter(),
                                         "correct": 0, "others": [], "panel": []})
        row["times"].append(at)
        row["verdicts"][verdict] += 1
        row["correct"] += correct is True
        row["others"] += [(verdict, theirs) for who, theirs in by_pair[pair].items() if who != reviewer]
        if verdict in ORDER_OF_VERDICT and pair in panel:
            row["panel"].append((ORDER_OF_VERDICT[verdict], panel[pair]))
    return sorted((_summary(row, now) for row in rows.values()), key=lambda r: (-r["reviews"], r["username"]))


def _summary(row, now):
    times = sorted(row["times"])
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:]) if b - a <= SITTING_GAP]
    n = len(times)
    return {
        "id": row["id"], "username": row["username"], "reviews": n,
        "last_day": sum(1 for t in times if now - t <= timedelta(days=1)),
        "last_week": sum(1 for t in times if now - t <= timedelta(days=7)),
        "first": times[0], "last": times[-1],
        "median_seconds": median(gaps) if gaps else None,
        "verdicts": [{"verdict": v, "n": row["verdicts"][v], "share": row["verdicts"][v] / n}
                     for v in Review.Verdict.values],
        "correct_share": row["correct"] / n,
        "agreements": [{"name": "reviewers", **_agreement(row["others"])},
                       {"name": "panel", **_agreement(row["panel"])}],
    }


def _agreement(pairs):
    if not pairs:
        return {"n": 0, "share": None, "kappa": None}
    same = sum(a == b for a, b in pairs)
    return {"n": len(pairs), "share": same / len(pairs),
            "kappa": statistics.cohen_kappa(statistics.pairs_table(pairs))}


def _panel_orders(dataset, pair_ids):
    """{pair id: "chosen" | "tie" | "rejected"}: the panel's order of each pair both of whose responses
    some judge scored (mean of the judges' latest ok scores of each response)."""
    if not pair_ids:
        return {}
    latest = latest_ok_judgements(
        "j.response_id IN (SELECT chosen_id FROM annotation_pair WHERE id = ANY(%(pairs)s)"
        " UNION SELECT rejected_id FROM annotation_pair WHERE id = ANY(%(pairs)s))")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH s AS (SELECT response_id, avg(score) AS mean FROM ({latest}) l GROUP BY response_id)
                SELECT q.id, sc.mean, sr.mean FROM annotation_pair q
                JOIN s sc ON sc.response_id = q.chosen_id JOIN s sr ON sr.response_id = q.rejected_id
                WHERE q.id = ANY(%(pairs)s) AND q.dataset_id = %(dataset)s""",
            {"pairs": pair_ids, "dataset": dataset.pk})
        rows = cursor.fetchall()
    # Means rounded as pair building rounds panel scores, so 8.3 − 6.3 and an exact tie compare as written.
    return {pk: ("tie" if round(c, 6) == round(r, 6) else "chosen" if c > r else "rejected") for pk, c, r in rows}

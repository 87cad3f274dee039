"""Suspicion: one score per pair for how likely its automatic label is wrong, from every signal the app has
on it, so that a reviewer's first hour goes to the pairs most likely wrong ("most suspicious first" in the
pair list and the review queue).

The score is a logistic model, sigmoid(INTERCEPT + Σ weight × value), over the signals in SIGNALS. Each
signal is a SQL expression over one pair (`q`, with the joins of _VALUES); to add one (e.g. a pairwise
re-judging verdict), add a Signal entry and, where it needs a table, a join. The quality-count job stores
every pair's score and the signals that raised it (PairSuspicion) after it has stored the rules' members,
which the rule signals read, so the list and the queue sort by an index.

Weights: fitted offline (bench/audit_power.py --fit-suspicion: numpy logistic regression, L2 1e-2, on the
seeded-defect benchmark, 3,000 pairs, seed 1, after the similarity and text rules of issue 12 and with the
benchmark's pairwise re-judging of the 500 most suspicious pairs no defect rule flags; label: the pair
carries any seeded defect). Two came out slightly negative (reward-against −0.05: the benchmark's built-in
reward model is at chance; judge-failures −0.24) and are set to 0, so that no signal lowers suspicion.
pairwise-against is fitted on the re-judged pairs only (the others have no verdict). Measured on held-out
seeds beside the figures in BENCHMARKS.md (*Audit power*): ROC AUC and the defective pairs among the 50,
100, 200, 500 most suspicious. The reviewer signal has no benchmark (no reviews there): its weight is set by
hand so that one reviewer who contradicts the label outweighs any single machine signal.
"""

import math
from dataclasses import dataclass

from django.db import connection
from django.utils.translation import gettext_lazy as _

from annotation.models import RewardModel
from annotation.queries import latest_ok_judgements
from annotation.rejudging import PAIRWISE_AGAINST_SQL

from .models import PairSuspicion


@dataclass(frozen=True)
class Signal:
    name: str
    reason: str  # the signal in words, with %(value)s: shown on the pair page when it raises the score
    sql: str  # its value for pair q (0 when it says nothing)
    weight: float


def _member_of(view):
    """1 when the pair is a stored member of the named view (stored by the quality-count job before the scores)."""
    return (f"(EXISTS (SELECT 1 FROM review_selectionmember m WHERE m.dataset_id = q.dataset_id "
            f"AND m.view = '{view}' AND m.pair_id = q.id))::int")


INTERCEPT = -2.954
SIGNALS = [
    Signal("narrow-gap", _("The panel's gap is narrow: %(value)s points below 5"),
           "greatest(0, 5 - coalesce(q.chosen_score - q.rejected_score, 5))", 0.107),
    Signal("judge-spread", _("The judges' scores of one response spread by %(value)s points"),
           "greatest(coalesce(sc.spread, 0), coalesce(sr.spread, 0))", 0.048),
    Signal("judge-flip", _("A judge scores the rejected response %(value)s points higher"),
           "greatest(coalesce(f.flip, 0), 0)", 0.367),
    Signal("reward-against", _("The reward model prefers the rejected response by %(value)s"),
           "greatest(0, coalesce(rr.reward - rc.reward, 0))", 0.0),
    Signal("empty-or-truncated", _("A response is empty or cut off"), _member_of("empty-or-truncated"), 4.815),
    Signal("refusal-chosen", _("The chosen response refuses"), _member_of("refusal-chosen"), 4.58),
    Signal("non-chinese-answer", _("The chosen response is in a language the prompt did not ask for"),
           _member_of("non-chinese-answer"), 4.774),
    Signal("identical-responses", _("Chosen and rejected are (nearly) identical"),
           _member_of("identical-responses"), 4.775),
    Signal("near-duplicate-prompt", _("The prompt near-duplicates another"), _member_of("near-duplicate-prompt"),
           4.874),
    Signal("contaminated", _("The prompt is found in a benchmark"), _member_of("contaminated"), 4.96),
    Signal("judge-failures", _("A judge failed to score a response"), _member_of("judge-failures"), 0.0),
    Signal("length-ratio", _("One response is many times longer than the other"), _member_of("length-ratio"), 0.109),
    # Not fitted (the benchmark has no reviews): +1 when every reviewer contradicts the label, −1 when every
    # one confirms it.
    Signal("reviewers-disagree", _("Reviewers found the chosen response not better (%(value)s of them, net)"),
           "coalesce(v.against, 0)", 4.0),
    # The share of consistent pairwise verdicts (annotation/rejudging.py) that prefer the rejected response.
    Signal("pairwise-against",
           _("A pairwise judge prefers the rejected response in both orders (%(value)s of verdicts)"),
           "coalesce(pw.against, 0)", 3.581),
]
BY_NAME = {s.name: s for s in SIGNALS}

# Per pair: the judges' spread on each response, the largest lead a judge gives the rejected response, the
# reward model's scores, and the reviewers' net verdict. Params: dataset, model (may be None).
_VALUES = """
    WITH latest AS ({latest}),
    spread AS (SELECT response_id, max(score) - min(score) AS spread FROM latest GROUP BY response_id
               HAVING count(*) >= 2),
    flip AS (SELECT q.id AS pair_id, max(r.score - c.score) AS flip FROM annotation_pair q
             JOIN latest c ON c.response_id = q.chosen_id
             JOIN latest r ON r.response_id = q.rejected_id AND r.judge_id = c.judge_id
             WHERE q.dataset_id = %(dataset)s GROUP BY q.id),
    v AS (SELECT pair_id, avg(CASE WHEN verdict = 'chosen_better' THEN -1.0 ELSE 1.0 END) AS against
          FROM review_review WHERE dataset_id = %(dataset)s GROUP BY pair_id),
    pw AS ({pairwise})
    SELECT q.id, {values}, rc.reward - rr.reward AS margin,
           (SELECT char_length(t.text) FROM annotation_response t WHERE t.id = q.chosen_id)
           + (SELECT char_length(t.text) FROM annotation_response t WHERE t.id = q.rejected_id) AS length
    FROM annotation_pair q
    LEFT JOIN spread sc ON sc.response_id = q.chosen_id
    LEFT JOIN spread sr ON sr.response_id = q.rejected_id
    LEFT JOIN flip f ON f.pair_id = q.id
    LEFT JOIN annotation_rewardscore rc ON rc.response_id = q.chosen_id AND rc.reward_model_id = %(model)s
    LEFT JOIN annotation_rewardscore rr ON rr.response_id = q.rejected_id AND rr.reward_model_id = %(model)s
    LEFT JOIN v ON v.pair_id = q.id
    LEFT JOIN pw ON pw.pair_id = q.id
    WHERE q.dataset_id = %(dataset)s"""


def _values_sql():
    values = ", ".join(f"({s.sql})::float AS \"{s.name}\"" for s in SIGNALS)
    return _VALUES.format(latest=latest_ok_judgements("r.dataset_id = %(dataset)s"), values=values,
                          pairwise=PAIRWISE_AGAINST_SQL)


def _params(dataset):
    model = RewardModel.objects.newest_for(dataset)
    return {"dataset": dataset.pk, "model": model.pk if model is not None else None}


def signal_values(dataset):
    """{pair id: {signal name: value}} of the dataset (for the benchmark's fit; the job scores in SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(_values_sql(), _params(dataset))
        return {row[0]: dict(zip(BY_NAME, row[1:1 + len(SIGNALS)])) for row in cursor.fetchall()}


def score_of(values):
    """The score of one pair's {signal name: value} (as the job computes it in SQL)."""
    z = INTERCEPT + sum(BY_NAME[name].weight * value for name, value in values.items())
    return 1 / (1 + math.exp(-z))


def store(dataset):
    """Score every pair of the dataset and store the scores with their reasons (the signals that raised it,
    {name: [contribution, value]}) and the pair list's sort keys margin and length, replacing the old ones.
    Call inside a transaction."""
    logit = " + ".join([str(INTERCEPT)] + [f"{s.weight} * s.\"{s.name}\"" for s in SIGNALS])
    reasons = ", ".join(
        f"'{s.name}', CASE WHEN {s.weight} * s.\"{s.name}\" > 0 "
        f"THEN jsonb_build_array(round(({s.weight} * s.\"{s.name}\")::numeric, 3), round(s.\"{s.name}\"::numeric, 2)) END"
        for s in SIGNALS)
    PairSuspicion.objects.filter(dataset=dataset).delete()
    with connection.cursor() as cursor:
        # Every join here reads the whole dataset: hash joins at any size. A new dataset is estimated at about
        # one pair while the statistics know only the datasets before it (autoanalyze waits for 10 % of a
        # table to change), and PostgreSQL then chose nested loops over the CTE scans: a 2,827-pair dataset
        # beside a 1M-pair one took over 90 s here, 0.8 s with them off (BENCHMARKS.md, audit power).
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(f"""
            INSERT INTO review_pairsuspicion (pair_id, dataset_id, score, reasons, margin, length)
            SELECT s.id, %(dataset)s, 1 / (1 + exp(-({logit}))), jsonb_strip_nulls(jsonb_build_object({reasons})),
                   s.margin, s.length
            FROM ({_values_sql()}) s""", _params(dataset))
        cursor.execute("SET LOCAL enable_nestloop TO DEFAULT")


def reasons_of(pair, top=3):
    """(score, [reason in words, …]) of the pair's stored suspicion, the signals that raised it most first;
    None when the quality-count job has not scored it."""
    row = PairSuspicion.objects.filter(pair=pair).values_list("score", "reasons").first()
    if row is None:
        return None
    score, reasons = row
    ranked = sorted(((c, name, v) for name, (c, v) in reasons.items() if name in BY_NAME), reverse=True)[:top]
    return score, [BY_NAME[name].reason % {"value": _number(v)} for _c, name, v in ranked]


def _number(value):
    return f"{value:g}"


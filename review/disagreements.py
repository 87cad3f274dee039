"""Disagreement views: where the automatic labels and the people (or the judges among themselves)
do not agree. Each is a named selection (review/selections.py), so the Disagreements page, the pair
list and the review queue all use the same definition; every one is a SQL filter on the pairs.

Definitions (the settings are GET parameters with these defaults):
- judge-spread: a response of the pair has, over the judges' latest ok scores (at least two judges),
  max − min > `spread` (default 3), or, when `sd` > 0, a population standard deviation > `sd`.
- judge-order: among the judges that scored both responses of the pair, one scores chosen higher
  by more than `margin` (default 2) and another scores rejected higher by more than `margin`. With margin
  0 any one-point flip counted, and one noisy or biased judge flooded the list (benchmark, seed 1: 62 %
  of the flagged pairs clean at 0). The pair page names the judges that flipped (`judge_flips`).
- reward-vs-panel: the reward model confidently prefers the rejected response, r(chosen) − r(rejected)
  < −`margin` (default 5), while the panel is sure of the label, gap ≥ `gap` (default 4): the size of
  both, not their signs (by sign it listed exactly the pairs `reward-filtered` filters). The panel gap is
  the pair's stored gap (chosen_score − rejected_score, set by pair building, as in exports); the reward
  model is `model` (a RewardModel id; 0, the default, means the newest that scored the dataset).
- reviewer-vs-auto: a review's verdict is not "chosen is better" (the automatic label).
- reviewer-vs-reviewer: the pair's reviews do not all have the same verdict.

judge-spread, judge-order and reward-vs-panel are signals (Selection.signal): on the audit benchmark
(bench/audit_power.py, held-out seed 3) 70 %, 78 % and 84 % of the pairs they flag are clean, so the page
shows them apart from the disagreements that point at a wrong label (the reviewers', the pairwise judge's).

Helper selections serve the overview's charts (a click on a bar opens its pairs):
- reward-sign: sign(r(chosen) − r(rejected)) differs from sign(panel gap) (the reward agreement chart).
- gap-range: gap_min ≤ panel gap < gap_max.
- margin-range: margin_min ≤ reward margin < margin_max (reward model as above).

"Latest ok judgement": for each (response, judge), the newest judgement with status ok, as pair
building and exports count it (annotation/queries.py).
"""

from django.db.models import Exists, F, OuterRef
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from annotation.models import RewardModel
from annotation.queries import latest_ok_judgements

from .members import materialised
from .models import DashboardSnapshot, Review
from .selections import REGISTRY, selection

# (response, judge, score) of the dataset's latest ok judgements; params: the dataset's id.
LATEST_SCORES = latest_ok_judgements("r.dataset_id = %s")


def reward_model_for(dataset, model_id=0):
    """The reward model whose margins count: `model_id`, or the newest that scored the dataset."""
    if model_id:
        return RewardModel.objects.filter(pk=int(model_id)).first()
    return RewardModel.objects.newest_for(dataset)


def refreshed_at(dataset, view_name):
    """When the dashboard refresh that stored the disagreement views' members began, or None."""
    snap = (DashboardSnapshot.objects.filter(dataset=dataset, name="disagreements")
            .values_list("computed_at", "data__materialised").first())
    return snap[0] if snap is not None and snap[1] else None


@selection("judge-spread", _("Judge panel spread"), "disagreement",
           _("A response of the pair on which the judges' scores spread by more than the setting "
             "(max − min, or the standard deviation when sd is set)."), signal=True, spread=3.0, sd=0.0)
@materialised("judge-spread", refreshed_at)
def judge_spread(pairs, dataset, settings):
    sql = f"""
        WITH latest AS ({LATEST_SCORES}),
        wide AS (
            SELECT response_id FROM latest GROUP BY response_id
            HAVING count(*) >= 2 AND (round((max(score) - min(score))::numeric, 6) > %s
                                      OR (%s > 0 AND stddev_pop(score) > %s)))
        SELECT q.id FROM annotation_pair q
        WHERE q.dataset_id = %s AND (q.chosen_id IN (SELECT response_id FROM wide)
                                     OR q.rejected_id IN (SELECT response_id FROM wide))"""
    params = [dataset.pk, settings["spread"], settings["sd"], settings["sd"], dataset.pk]
    return pairs.filter(pk__in=RawSQL(sql, params))


@selection("judge-order", _("Judges disagree on the order"), "disagreement",
           _("One judge scores the chosen response higher, another the rejected one (each by more than `margin` "
             "points)."), signal=True, margin=2.0)
@materialised("judge-order", refreshed_at)
def judge_order(pairs, dataset, settings):
    sql = f"""
        WITH latest AS ({LATEST_SCORES})
        SELECT q.id FROM annotation_pair q
        JOIN latest c ON c.response_id = q.chosen_id
        JOIN latest r ON r.response_id = q.rejected_id AND r.judge_id = c.judge_id
        WHERE q.dataset_id = %s
        GROUP BY q.id HAVING bool_or(c.score - r.score > %s) AND bool_or(r.score - c.score > %s)"""
    margin = settings["margin"]
    return pairs.filter(pk__in=RawSQL(sql, [dataset.pk, dataset.pk, margin, margin]))


def judge_flips(pair, margin=None):
    """[(judge name, lead)]: the judges that score the pair's rejected response higher than its chosen one by
    more than `margin` (judge-order's default), largest lead first: who flipped the order."""
    from annotation.models import Judgement

    margin = REGISTRY["judge-order"].settings["margin"] if margin is None else margin
    scores = {}
    for judgement in Judgement.objects.latest_ok([pair.chosen_id, pair.rejected_id]).select_related("judge"):
        scores.setdefault(judgement.judge.name, {})[judgement.response_id] = judgement.score
    leads = [(name, s[pair.rejected_id] - s[pair.chosen_id]) for name, s in scores.items()
             if pair.chosen_id in s and pair.rejected_id in s]
    return sorted(((name, lead) for name, lead in leads if lead > margin), key=lambda x: (-x[1], x[0]))


# The dataset's pairs with the reward model's scores of their chosen (sc) and rejected (sr) responses;
# params: the model's id twice, the dataset's id; callers add conditions with AND.
_WITH_REWARDS = """
    SELECT q.id FROM annotation_pair q
    JOIN annotation_rewardscore sc ON sc.response_id = q.chosen_id AND sc.reward_model_id = %s
    JOIN annotation_rewardscore sr ON sr.response_id = q.rejected_id AND sr.reward_model_id = %s
    WHERE q.dataset_id = %s"""


@selection("reward-vs-panel", _("Reward model against the judge panel"), "disagreement",
           _("The reward model prefers the rejected response by more than `margin` while the panel's score gap "
             "is at least `gap`: one of the two is confidently wrong."), signal=True, margin=5.0, gap=4.0, model=0)
@materialised("reward-vs-panel", refreshed_at)
def reward_vs_panel(pairs, dataset, settings):
    model = reward_model_for(dataset, settings["model"])
    if model is None:
        return pairs.none()
    sql = _WITH_REWARDS + """ AND q.chosen_score IS NOT NULL AND q.rejected_score IS NOT NULL
          AND sc.reward - sr.reward < -%s AND q.chosen_score - q.rejected_score >= %s"""
    return pairs.filter(pk__in=RawSQL(sql, [model.pk, model.pk, dataset.pk, settings["margin"], settings["gap"]]))


@selection("reviewer-vs-auto", _("Reviewer against the automatic label"), "disagreement",
           _("A reviewer did not find the chosen response better (rejected better, tie or both bad)."))
def reviewer_vs_auto(pairs, dataset, settings):
    contradicted = Review.objects.filter(pair=OuterRef("pk")).exclude(verdict=Review.Verdict.CHOSEN_BETTER)
    return pairs.filter(Exists(contradicted))


@selection("reviewer-vs-reviewer", _("Reviewer against reviewer"), "disagreement",
           _("Reviewers of the pair gave different verdicts."))
def reviewer_vs_reviewer(pairs, dataset, settings):
    sql = """
        SELECT v.pair_id FROM review_review v
        WHERE v.dataset_id = %s GROUP BY v.pair_id HAVING count(DISTINCT v.verdict) > 1"""
    return pairs.filter(pk__in=RawSQL(sql, [dataset.pk]))


@selection("reward-sign", _("Reward model's sign against the panel's"), "chart",
           _("The sign of the reward margin differs from the sign of the panel's score gap (the overview's reward "
             "agreement chart)."), model=0)
def reward_sign(pairs, dataset, settings):
    model = reward_model_for(dataset, settings["model"])
    if model is None:
        return pairs.none()
    sql = _WITH_REWARDS + """ AND q.chosen_score IS NOT NULL AND q.rejected_score IS NOT NULL
          AND sign(sc.reward - sr.reward) <> sign(q.chosen_score - q.rejected_score)"""
    return pairs.filter(pk__in=RawSQL(sql, [model.pk, model.pk, dataset.pk]))


@selection("gap-range", _("Panel gap in a range"), "chart",
           _("Pairs whose stored panel gap is at least gap_min and below gap_max."), gap_min=0.0, gap_max=10.0)
def gap_range(pairs, dataset, settings):
    gap = pairs.alias(gap=F("chosen_score") - F("rejected_score"))
    return gap.filter(gap__gte=settings["gap_min"], gap__lt=settings["gap_max"])


@selection("margin-range", _("Reward margin in a range"), "chart",
           _("Pairs whose reward margin r(chosen) − r(rejected) is at least margin_min and below margin_max."),
           margin_min=-1e9, margin_max=1e9, model=0)
def margin_range(pairs, dataset, settings):
    model = reward_model_for(dataset, settings["model"])
    if model is None:
        return pairs.none()
    sql = _WITH_REWARDS + " AND sc.reward - sr.reward >= %s AND sc.reward - sr.reward < %s"
    params = [model.pk, model.pk, dataset.pk, settings["margin_min"], settings["margin_max"]]
    return pairs.filter(pk__in=RawSQL(sql, params))

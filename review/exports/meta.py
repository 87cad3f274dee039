"""The metadata columns an export adds when asked (`with_meta`): per-judge scores, panel gap,
reward margin, models and reviews of each pair."""

from annotation.models import RewardModel

from .selection import query_cursor

META_COLUMNS = ["pair_id", "status", "chosen_model", "rejected_model", "chosen_scores", "rejected_scores",
                "panel_gap", "reward_margin", "review_verdicts", "review_notes", "swapped"]


def current_reward_model(dataset):
    """The reward model whose scores the margins use: the newest that scored this dataset."""
    return (
        RewardModel.objects.filter(scores__response__dataset=dataset).distinct().order_by("-created_at", "-pk").first()
    )


def add_meta(batch, reward_model):
    """Per-judge scores, reward margin and reviews for a batch, in two queries."""
    response_ids = [p.chosen_id for p in batch] + [p.rejected_id for p in batch]
    scores = {}
    with query_cursor() as cursor:
        # The newest judgement of each judge (a rescoring with a new rubric replaces the old score).
        cursor.execute(
            """SELECT DISTINCT ON (jm.response_id, jm.judge_id) jm.response_id, j.name, jm.score
               FROM annotation_judgement jm JOIN annotation_judge j ON j.id = jm.judge_id
               WHERE jm.response_id = ANY(%s) AND jm.status = 'ok'
               ORDER BY jm.response_id, jm.judge_id, jm.created_at DESC, jm.id DESC""",
            [response_ids],
        )
        for response_id, judge, score in cursor.fetchall():
            scores.setdefault(response_id, {})[judge] = score
        rewards = {}
        if reward_model is not None:
            cursor.execute(
                "SELECT response_id, reward FROM annotation_rewardscore WHERE reward_model_id = %s AND response_id = ANY(%s)",
                [reward_model.pk, response_ids],
            )
            rewards = dict(cursor.fetchall())
    for p in batch:
        gap = None if p.chosen_score is None or p.rejected_score is None else p.chosen_score - p.rejected_score
        margin = None
        if p.chosen_id in rewards and p.rejected_id in rewards:
            margin = rewards[p.chosen_id] - rewards[p.rejected_id]
        p.meta = {
            "pair_id": p.pair_id,
            "status": p.status,
            "chosen_model": p.chosen_model,
            "rejected_model": p.rejected_model,
            "chosen_scores": dict(sorted(scores.get(p.chosen_id, {}).items())),
            "rejected_scores": dict(sorted(scores.get(p.rejected_id, {}).items())),
            "panel_gap": gap,
            "reward_margin": margin,
            "review_verdicts": list(p.verdicts),
            "review_notes": [n for n in p.notes if n],
            "swapped": p.swapped,
        }

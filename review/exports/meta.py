"""The metadata columns an export adds when asked (`with_meta`): per-judge scores, panel gap,
reward margin, models and reviews of each pair.

Each column has one type in every format (META_FEATURES, declared in the dataset card): per-judge
scores are a list of {judge, score}, not a {judge: score} object whose keys, and so whose Arrow
struct type, would change from row to row. Empty lists and nulls are real values here (a pair
nobody reviewed), so a JSONL file with these columns is loaded with the card's features."""

from annotation.queries import latest_ok_judgements

from .selection import query_cursor

META_COLUMNS = ["pair_id", "status", "chosen_model", "rejected_model", "chosen_scores", "rejected_scores",
                "panel_gap", "reward_margin", "review_verdicts", "review_notes", "swapped"]


# The columns' types, in the dataset card's `dataset_info.features` notation (manifest.py).
META_FEATURES = [
    {"name": "pair_id", "dtype": "int64"},
    {"name": "status", "dtype": "string"},
    {"name": "chosen_model", "dtype": "string"},
    {"name": "rejected_model", "dtype": "string"},
    {"name": "chosen_scores", "list": [{"name": "judge", "dtype": "string"}, {"name": "score", "dtype": "float64"}]},
    {"name": "rejected_scores", "list": [{"name": "judge", "dtype": "string"}, {"name": "score", "dtype": "float64"}]},
    {"name": "panel_gap", "dtype": "float64"},
    {"name": "reward_margin", "dtype": "float64"},
    {"name": "review_verdicts", "list": "string"},
    {"name": "review_notes", "list": "string"},
    {"name": "swapped", "dtype": "bool"},
]


def _judge_scores(by_judge):
    return [{"judge": judge, "score": score} for judge, score in sorted(by_judge.items())]


def add_meta(batch, reward_model):
    """Per-judge scores, reward margin and reviews for a batch, in two queries."""
    response_ids = [p.chosen_id for p in batch] + [p.rejected_id for p in batch]
    scores = {}
    with query_cursor() as cursor:
        # Each judge's latest ok judgement (a rescoring with a new rubric replaces the old score).
        cursor.execute(latest_ok_judgements("j.response_id = ANY(%s)", columns="j.response_id, g.name, j.score",
                                            joins="JOIN annotation_judge g ON g.id = j.judge_id"), [response_ids])
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
            "chosen_scores": _judge_scores(scores.get(p.chosen_id, {})),
            "rejected_scores": _judge_scores(scores.get(p.rejected_id, {})),
            "panel_gap": gap,
            "reward_margin": margin,
            "review_verdicts": list(p.verdicts),
            "review_notes": [n for n in p.notes if n],
            "swapped": p.swapped,
        }

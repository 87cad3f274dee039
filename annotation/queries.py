"""Rules over the pipeline's data that several pages, jobs and exports apply, written once here.

"Latest ok judgement": for each (response, judge), the judgement with status ok made last (created_at,
then id for judgements of one instant). A rescore under a new rubric version replaces the old score; a
rescore that fails (parse error, refusal, error) does not take away the last ok score. Pair building,
the dashboards, the disagreement views, the judge analysis, the reward benchmark, the exports and the
review queue all read scores through `latest_ok_judgements` (raw SQL) or `Judgement.objects.latest_ok`
(the same SQL, as a queryset).

The newest reward model of a dataset is `RewardModel.objects.newest_for` (annotation/models.py).
"""

# DISTINCT ON keeps the first row of each (response, judge) in this order: the latest.
_LATEST_OK = """
    SELECT DISTINCT ON (j.response_id, j.judge_id) {columns}
    FROM annotation_judgement j JOIN annotation_response r ON r.id = j.response_id {joins}
    WHERE ({where}) AND j.status = 'ok'
    ORDER BY j.response_id, j.judge_id, j.created_at DESC, j.id DESC
"""


def latest_ok_judgements(where, columns="j.response_id, j.judge_id, j.score", joins=""):
    """SQL selecting `columns` of each judge's latest ok judgement of every response that `where` admits.

    In `where`, `columns` and `joins`, `j` is the judgement and `r` its response; `joins` adds tables
    (e.g. the prompt or the judge). The caller passes the parameters `where` names."""
    return _LATEST_OK.format(columns=columns, joins=joins, where=where)

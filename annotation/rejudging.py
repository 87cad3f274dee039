"""Pairwise re-judging of suspect pairs: a judge asked "which response is better, A or B?" about each pair
of a selection, in both orders (the reward benchmark's pairwise mode, annotation/reward/pairwise.py), its
verdicts stored on the pairs (PairwiseVerdict).

The selection is resolved by whoever starts the job (the pair list's form, `manage.py rejudge_pairs`: the
review side, which this app never imports) into RejudgeTarget rows, in SQL, as the job is made: the
job's params hold the judge and the selection's description only, and a list of 1M pairs costs one
INSERT … SELECT, not a 1M-id JSON blob. The job walks its targets by keyset; each chunk's verdicts and
the cursor commit together, so a killed worker's successor resumes after the last committed chunk, and a
verdict already stored is replaced (ON CONFLICT), never doubled. Answers are cached (JudgeCacheEntry):
a re-run over the same pairs pays nothing.

A pair whose requests failed after the retries gets no verdict (a re-run asks again) and counts as failed;
the job then ends finished with problems.
"""

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from .jobs import JobContext, JobFailed, Tally, counted, create_job, job_kind
from .judge_client import JudgeSettings
from .models import Judge, JudgeCacheEntry, PairwiseVerdict
from .reward.pairwise import PAIRS_PER_SLOT, ask_both_orders, pairwise_params

KIND = "pairwise_rejudge"
# The pair list's "re-judge these" form asks about this many pairs unless told otherwise.
DEFAULT_LIMIT = 500

# Outcome → the job's count of it.
_COUNT_OF = {PairwiseVerdict.Outcome.CHOSEN: "agree", PairwiseVerdict.Outcome.REJECTED: "disagree",
             PairwiseVerdict.Outcome.INCONSISTENT: "inconsistent", PairwiseVerdict.Outcome.UNPARSEABLE: "unparseable"}

REJUDGE_TALLY = Tally(
    items=counted("pairs"), failures=counted("failed"),
    summary=ngettext_lazy("%(failed)s of %(items)s pair not judged (requests failed)",
                          "%(failed)s of %(items)s pairs not judged (requests failed)", "n"),
)


def verdict_outcome(chosen_first, chosen_second):
    """The verdict's outcome from the letters picked with the chosen response as A, then as B."""
    if chosen_first is None or chosen_second is None:
        return PairwiseVerdict.Outcome.UNPARSEABLE
    if (chosen_first == "A") != (chosen_second == "B"):
        return PairwiseVerdict.Outcome.INCONSISTENT
    return PairwiseVerdict.Outcome.CHOSEN if chosen_first == "A" else PairwiseVerdict.Outcome.REJECTED


def start_rejudge(dataset, judge, pairs, *, limit=None, described="", user=None, enqueue_it=True):
    """Create the job asking `judge` about `pairs` (a queryset of the dataset's pairs, in the order that
    decides which come first under `limit`) and store its targets; `described` names the selection on the
    job page. ValueError for a judge that cannot be asked or an empty selection."""
    params = {**pairwise_params(judge), "selection": described, "limit": limit}
    selected = pairs.filter(dataset=dataset).values("pk")
    if limit:
        selected = selected[:limit]
    with transaction.atomic():
        job = create_job(KIND, dataset=dataset, user=user, params=params, enqueue_it=enqueue_it)
        stored = _store_targets(job, selected)
        if not stored:  # rolls the job back with the block
            raise ValueError("the selection holds no pairs")
        job.total = stored
        job.save(update_fields=["total"])
    return job


def _store_targets(job, selected):
    try:
        sql, params = selected.query.sql_with_params()
    except EmptyResultSet:  # pairs.none()
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO annotation_rejudgetarget (job_id, pair_id) SELECT %s, t.id FROM ({sql}) AS t(id)"
                       " ON CONFLICT DO NOTHING", [job.pk, *params])
        return cursor.rowcount


def _targets(job_id, after, limit):
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT q.id, q.dataset_id, p.messages, c.text, r.text FROM annotation_rejudgetarget t
               JOIN annotation_pair q ON q.id = t.pair_id JOIN annotation_prompt p ON p.id = q.prompt_id
               JOIN annotation_response c ON c.id = q.chosen_id JOIN annotation_response r ON r.id = q.rejected_id
               WHERE t.job_id = %s AND t.pair_id > %s ORDER BY t.pair_id LIMIT %s""",
            [job_id, after, limit],
        )
        return cursor.fetchall()


def _store_verdicts(rows):
    if not rows:
        return
    columns = [list(c) for c in zip(*rows)]
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_pairwiseverdict (dataset_id, pair_id, judge_id, chosen_first, chosen_second,
                   outcome, chosen_first_key, chosen_second_key, job_id, created_at)
               SELECT *, now() FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],
                   %s::text[], %s::uuid[], %s::uuid[], %s::bigint[])
               ON CONFLICT (pair_id, judge_id) DO UPDATE SET chosen_first = EXCLUDED.chosen_first,
                   chosen_second = EXCLUDED.chosen_second, outcome = EXCLUDED.outcome,
                   chosen_first_key = EXCLUDED.chosen_first_key, chosen_second_key = EXCLUDED.chosen_second_key,
                   job_id = EXCLUDED.job_id, created_at = EXCLUDED.created_at""",
            columns,
        )


@job_kind(KIND, label=pgettext_lazy("job kind", "pairwise re-judging"), unit="pairs", tally=REJUDGE_TALLY,
          counts={"pairs": _("Pairs asked about"), "agree": _("Judge prefers chosen in both orders"),
                  "disagree": _("Judge prefers rejected in both orders"),
                  "inconsistent": _("Position-inconsistent (the verdict followed the order)"),
                  "unparseable": _("No verdict in an answer"), "failed": _("Not judged (requests failed)")})
def run_rejudge(ctx: JobContext):
    judge = Judge.objects.filter(pk=ctx.params["judge"]).first()
    if judge is None:
        raise JobFailed("the judge was deleted")
    settings_ = JudgeSettings.of(judge)
    after = ctx.cursor.get("after", 0)
    # As the benchmark's pairwise job: about four rounds of the judge's concurrency a chunk.
    chunk = max(4, PAIRS_PER_SLOT * settings_.max_concurrency)
    while rows := _targets(ctx.job.pk, after, chunk):
        asked = ask_both_orders(judge, settings_, [(messages, chosen, rejected)
                                                    for _pk, _ds, messages, chosen, rejected in rows])
        counts = {"pairs": len(rows), "failed": 0, **{name: 0 for name in _COUNT_OF.values()}}
        verdicts = []
        for (pair_id, dataset_id, *_texts), answer in zip(rows, asked.answers):
            if answer is None:
                counts["failed"] += 1
                continue
            result = verdict_outcome(*answer.verdicts)
            counts[_COUNT_OF[result]] += 1
            first, second = (v or "" for v in answer.verdicts)
            verdicts.append((dataset_id, pair_id, judge.pk, first, second, result.value, *answer.keys, ctx.job.pk))
        with transaction.atomic():
            asked.store_cache()
            _store_verdicts(verdicts)
            ctx.commit(done=len(rows), counts=counts, cursor={"after": rows[-1][0]})
        after = rows[-1][0]


# Per pair of a dataset (param %(dataset)s): the share of its consistent pairwise verdicts, any judge, that
# prefer the rejected response. The one definition that pairwise_against and the suspicion score read.
PAIRWISE_AGAINST_SQL = """
    SELECT pair_id, avg((outcome = 'rejected')::int)::float AS against FROM annotation_pairwiseverdict
    WHERE dataset_id = %(dataset)s AND outcome IN ('chosen', 'rejected') GROUP BY pair_id"""


def pairwise_against(dataset, pair_ids):
    """{pair id: the share of its consistent pairwise verdicts (any judge) that prefer the rejected response}
    for the pairs among `pair_ids` with at least one consistent verdict: a signal for the suspicion score."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pair_id, against FROM ({PAIRWISE_AGAINST_SQL}) a WHERE pair_id = ANY(%(ids)s)",
                       {"dataset": dataset.pk, "ids": list(pair_ids)})
        return dict(cursor.fetchall())


def verdicts_of(pair):
    """The pair's pairwise verdicts, each with its two answers' text (`first_text`, `second_text`)."""
    verdicts = list(PairwiseVerdict.objects.filter(pair=pair).select_related("judge").order_by("judge__name"))
    keys = [k for v in verdicts for k in (v.chosen_first_key, v.chosen_second_key)]
    texts = dict(JudgeCacheEntry.objects.filter(key__in=keys).values_list("key", "raw_output"))
    for v in verdicts:
        v.first_text, v.second_text = texts.get(v.chosen_first_key, ""), texts.get(v.chosen_second_key, "")
    return verdicts


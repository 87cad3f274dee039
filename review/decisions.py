"""Decisions on pairs: keep, discard or swap any set of pairs, recorded with who, when and why, and undone.

The one workflow behind the pair page's buttons, the pair list's bulk form, the review policy and the API:

    decide(dataset, pairs, action, user, reason, selection="") -> DecisionBatch
        `pairs`: a queryset of the dataset's pairs (any selection: `PairFilter(...).pairs(dataset)`), or ids.
    decide_list(dataset, params, action, user, reason) -> DecisionBatch   (params: a pair list's GET parameters)
    preview(dataset, pairs, action) -> {"change": n, "already": n, "withdrawn": n}
    undo(batch, user) -> DecisionBatch           (restored / left counts on it)
    start_decision(dataset, params, action, user, reason) -> DecisionBatch
    start_undo(batch, user) -> DecisionBatch
        what the pages use: up to INLINE_MAX_PAIRS at once, like decide_list / undo; a larger list as a job
        (`batch.job`, progress on the job page) that changes the pairs CHUNK_PAIRS at a time, in pair id order.
    apply_review_policy(dataset, pair_ids=None, user=None) -> DecisionBatch | None
    decisions_of(pair) -> PairDecision rows of the pair, newest first (with their batch)
All raise DecisionError (a message for the user) when the decision cannot be made as asked.

What each action does to a pair's status: keep → kept, discard → filtered, swap → swapped (the pair is kept the
other way round: the row keeps its chosen and rejected, exports and reward training exchange them; nothing that
reads chosen/rejected in chosen/rejected terms, such as reviews and judge scores, has to be rewritten, and undo
is a status change). A pair already in the target status, and a withdrawn pair (no longer formed by its build
run), are left as they are and counted. The changed pairs get the status_reason `decision batch=<id>` (review
policy: `review-policy batch=<id>`); a batch's undo puts back the status and reason each pair had before, for
the pairs that still carry that reason; a pair something changed since (another decision, a reward filter,
the build) is left alone and counted.

Set-based: a decision over a list is three statements (lock the pairs and record their prior state
in one `INSERT … SELECT … FOR NO KEY UPDATE`, then one `UPDATE … FROM` the record), never a loop in Python;
the lock makes the recorded prior state the one the update replaces, whoever else writes meanwhile. A list
larger than INLINE_MAX_PAIRS runs as a job doing the same per range of pair ids, each range committed with the
job's progress (a killed worker resumes after the last committed range; pairs already changed are "already").
"""

import re

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.http import QueryDict
from django.utils import timezone
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from annotation.jobs import JobFailed, create_job, job_kind
from annotation.models import Pair

from .models import DecisionBatch, PairDecision, ReviewSettings

__all__ = ["DecisionBatch", "DecisionError", "apply_review_policy", "decide", "decide_list", "decisions_of", "preview",
           "start_decision", "start_undo", "undo"]
from .selections import select_pairs

Action = DecisionBatch.Action
TARGET = {Action.KEEP: Pair.Status.KEPT, Action.DISCARD: Pair.Status.FILTERED, Action.SWAP: Pair.Status.SWAPPED}
# Statuses a decision leaves alone: a withdrawn pair is not one of the dataset's pairs any more (its build run
# no longer forms it); the next build that forms it again makes it pending.
UNDECIDABLE = (Pair.Status.WITHDRAWN,)
REASON_MAX = 2000

# A pair whose status a person decided, or agreeing reviews did (the reason is the batch's tag): exports take it as
# decided (no review exclusion, swapped only when its status is swapped). SQL over annotation_pair `p`.
DECIDED_SQL = r"p.status_reason ~ '^(decision|review-policy) batch=[0-9]+$'"
MANUAL_TAG = re.compile(r"^decision batch=(\d+)$")
TAG = re.compile(r"^(?:decision|review-policy) batch=(\d+)$")


class DecisionError(Exception):
    """The decision cannot be made as asked; the message says why."""


def _pair_sql(dataset, pairs):
    """(SQL selecting the ids of `pairs`, params), restricted to the dataset."""
    if not hasattr(pairs, "query"):
        pairs = Pair.objects.filter(pk__in=[int(p) for p in pairs])
    pairs = pairs.filter(dataset=dataset).order_by().values("pk")
    try:
        return pairs.query.sql_with_params()
    except EmptyResultSet:  # no ids, or pairs.none()
        return "SELECT NULL::bigint WHERE false", ()


def _action(action):
    try:
        return Action(action)
    except ValueError:
        raise DecisionError(_("Unknown decision %(action)r; expected keep, discard or swap.") % {"action": action}) \
            from None


def preview(dataset, pairs, action):
    """How many of `pairs` the action would change, how many are already so, how many are withdrawn."""
    target = TARGET[_action(action)]
    sql, params = _pair_sql(dataset, pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FILTER (WHERE p.status <> %s AND NOT p.status = ANY(%s)),
                       count(*) FILTER (WHERE p.status = %s), count(*) FILTER (WHERE p.status = ANY(%s))
                FROM annotation_pair p WHERE p.id IN ({sql})""",
            [target, list(UNDECIDABLE), target, list(UNDECIDABLE), *params])
        change, already, withdrawn = cursor.fetchone()
    return {"change": change, "already": already, "withdrawn": withdrawn}


# Lock the selected pairs that the decision changes and record what they were; `%(target)s` per pair (a manual
# decision has one target; the review policy's differs per pair, from its `targets` CTE).
_RECORD = """
INSERT INTO review_pairdecision (batch_id, pair_id, prior_status, prior_reason, status)
SELECT %(batch)s, p.id, p.status, p.status_reason, {target}
FROM annotation_pair p {join}
WHERE p.dataset_id = %(dataset)s AND p.id IN ({selection}) AND p.status <> {target} AND NOT p.status = ANY(%(undecidable)s)
  {where}
ORDER BY p.id
FOR NO KEY UPDATE OF p
"""
_APPLY = """
UPDATE annotation_pair p SET status = d.status, status_reason = %(tag)s
FROM review_pairdecision d WHERE d.batch_id = %(batch)s AND p.id = d.pair_id
"""


def decide(dataset, pairs, action, user, reason, selection=""):
    """Keep, discard or swap `pairs` (a queryset of the dataset's pairs, or pair ids); the recorded batch."""
    action = _action(action)
    if action == Action.POLICY:
        raise DecisionError(_("The review policy decides through apply_review_policy."))
    reason = (reason or "").strip()
    if not reason:
        raise DecisionError(_("Say why: a decision needs a reason."))
    if len(reason) > REASON_MAX:
        raise DecisionError(_("The reason is longer than %(n)s characters.") % {"n": REASON_MAX})
    sql, params = _pair_sql(dataset, pairs)
    with transaction.atomic():
        # Counted before: a list may select by status (`status=pending`), and the decision changes it.
        counts = preview(dataset, pairs, action)
        batch = DecisionBatch.objects.create(dataset=dataset, action=action, actor=user, reason=reason,
                                             selection=selection[:2000])
        batch.changed = _record_and_apply(batch, sql, params, target="%(target)s", extra={"target": TARGET[action]})
        batch.unchanged = {"already": counts["already"], "withdrawn": counts["withdrawn"]}
        batch.save(update_fields=["changed", "unchanged"])
    return batch


def _record_and_apply(batch, selection_sql, selection_params, target, join="", where="", extra=None, with_sql=""):
    """Record the prior state of the pairs the batch changes and change them; returns how many."""
    named = {"batch": batch.pk, "dataset": batch.dataset_id, "undecidable": list(UNDECIDABLE), "tag": batch.tag(),
             **(extra or {})}
    # The selection's own placeholders are positional (%s); name them so that they mix with ours.
    names = {f"s{i}": value for i, value in enumerate(selection_params)}
    numbered = iter(range(len(selection_params)))
    selection_named = re.sub(r"(?<!%)%s", lambda _m: f"%(s{next(numbered)})s", selection_sql)
    record = with_sql + _RECORD.format(target=target, join=join, selection=selection_named, where=where)
    with connection.cursor() as cursor:
        cursor.execute(record, {**named, **names})
        changed = cursor.rowcount
        cursor.execute(_APPLY, named)
    return changed


def _list_pairs(dataset, params):
    """The pairs of a pair list given by its GET parameters (a QueryDict or a query string), and the filters
    that name them (paging and view-only parameters dropped); DecisionError for a filter the list refuses."""
    if isinstance(params, str):
        params = QueryDict(params)
    filters = params.copy()
    for name in ("after", "page", "at", "audit", "blind"):
        filters.pop(name, None)
    pairs, form = select_pairs(dataset, filters)
    if pairs is None:
        raise DecisionError("; ".join(str(e) for errors in form.errors.values() for e in errors))
    return pairs, filters


def decide_list(dataset, params, action, user, reason):
    """Decide the pairs of a pair list given by its GET parameters (a QueryDict or a query string)."""
    pairs, filters = _list_pairs(dataset, params)
    return decide(dataset, pairs, action, user, reason, selection=filters.urlencode())


_UNDO = """
WITH restored AS (
    UPDATE annotation_pair p SET status = d.prior_status, status_reason = d.prior_reason
    FROM review_pairdecision d
    WHERE d.batch_id = %(batch)s AND p.id = d.pair_id AND p.status = d.status AND p.status_reason = %(tag)s
    RETURNING p.id
)
SELECT count(*) FROM restored
"""


def undo(batch, user):
    """Put back every pair of the batch that is still as the batch left it; the others are counted as left."""
    with transaction.atomic():
        batch = DecisionBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.undone_at is not None:
            raise DecisionError(_("Decision %(pk)s was undone already.") % {"pk": batch.pk})
        with connection.cursor() as cursor:
            # Lock them first, in id order as decide does, so that two undos and a decision never deadlock.
            cursor.execute("""SELECT p.id FROM annotation_pair p JOIN review_pairdecision d ON d.pair_id = p.id
                              WHERE d.batch_id = %s ORDER BY p.id FOR NO KEY UPDATE OF p""", [batch.pk])
            cursor.execute(_UNDO, {"batch": batch.pk, "tag": batch.tag()})
            restored = cursor.fetchone()[0]
        batch.undone_at, batch.undone_by = timezone.now(), user
        batch.restored, batch.left = restored, batch.changed - restored
        batch.save(update_fields=["undone_at", "undone_by", "restored", "left"])
    return batch


def batch_of(pair):
    """The batch whose decision the pair carries now (its status_reason is the batch's tag), or None."""
    match = TAG.match(pair.status_reason or "")
    if match is None:
        return None
    return DecisionBatch.objects.filter(pk=int(match.group(1)), dataset_id=pair.dataset_id).first()


def decisions_of(pair, limit=50):
    return (PairDecision.objects.filter(pair=pair).select_related("batch", "batch__actor", "batch__undone_by")
            .order_by("-batch__at", "-batch_id")[:limit])


# --- the review policy ------------------------------------------------------------------------------------

# Per reviewed pair, what its reviews say: keep (chosen better and correct), swap (rejected better and correct),
# discard (both bad, or the better one incorrect); ties and unanswered correctness vote for nothing. The target
# is the verdict at least `quorum` reviews give and more give than any other; none otherwise.
_VOTES = """
WITH votes AS (
    SELECT v.pair_id,
           count(*) FILTER (WHERE v.verdict = 'chosen_better' AND v.better_correct) AS keep,
           count(*) FILTER (WHERE v.verdict = 'rejected_better' AND v.better_correct) AS swap,
           count(*) FILTER (WHERE v.verdict = 'both_bad' OR v.better_correct = false) AS discard
    FROM review_review v
    WHERE v.dataset_id = %(dataset)s AND (%(all_pairs)s OR v.pair_id = ANY(%(pair_ids)s))
    GROUP BY v.pair_id
), targets AS (
    SELECT pair_id, CASE
        WHEN keep >= %(quorum)s AND keep > swap AND keep > discard THEN 'kept'
        WHEN swap >= %(quorum)s AND swap > keep AND swap > discard THEN 'swapped'
        WHEN discard >= %(quorum)s AND discard > keep AND discard > swap THEN 'filtered' END AS target
    FROM votes
)
"""

# A pair the policy decided earlier whose reviews no longer agree as they did (a review undone, edited or added):
# back to what it was before the policy decided it, while it is still as the policy left it.
_REVERT = """
UPDATE annotation_pair p SET status = d.prior_status, status_reason = d.prior_reason
FROM review_pairdecision d JOIN review_decisionbatch b ON b.id = d.batch_id
WHERE p.dataset_id = %(dataset)s AND (%(all_pairs)s OR p.id = ANY(%(pair_ids)s))
  AND b.action = 'policy' AND p.status_reason = 'review-policy batch=' || b.id AND d.pair_id = p.id
  AND p.status = d.status
  AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.pair_id = p.id AND t.target = p.status)
"""


_ANY_CHANGE = """
SELECT EXISTS (SELECT 1 FROM targets t JOIN annotation_pair p ON p.id = t.pair_id
               WHERE t.target IS NOT NULL AND p.status <> t.target AND NOT p.status = ANY(%(undecidable)s)
                 AND p.status_reason !~ %(manual)s)
"""


def apply_review_policy(dataset, pair_ids=None, user=None):
    """Let the reviews of `pair_ids` (None: every reviewed pair of the dataset) decide their statuses under the
    dataset's quorum; returns the batch of the pairs it changed, or None (no quorum set, nothing to change). A
    pair a person decided (`decision batch=…`) is left as it is."""
    quorum = ReviewSettings.of(dataset).status_quorum
    if not quorum:
        return None
    params = {"dataset": dataset.pk, "quorum": quorum, "all_pairs": pair_ids is None,
              "pair_ids": [int(p) for p in pair_ids or []]}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_VOTES + _REVERT, params)
            # Most verdicts decide nothing new: no batch is written for them.
            cursor.execute(_VOTES + _ANY_CHANGE, {**params, "undecidable": list(UNDECIDABLE),
                                                  "manual": MANUAL_TAG.pattern})
            if not cursor.fetchone()[0]:
                return None
        batch = DecisionBatch.objects.create(dataset=dataset, action=Action.POLICY, actor=user,
                                             reason=_("%(n)s agreeing reviews") % {"n": quorum})
        selection = ("SELECT t.pair_id FROM targets t WHERE t.target IS NOT NULL")
        join = "JOIN targets tt ON tt.pair_id = p.id"
        # A person's decision stands: the policy never changes a pair an admin decided.
        changed = _record_and_apply(batch, selection, [], target="tt.target", join=join, with_sql=_VOTES,
                                    where="AND p.status_reason !~ %(manual)s",
                                    extra={**params, "manual": MANUAL_TAG.pattern})
        if not changed:
            batch.delete()
            return None
        batch.changed = changed
        batch.save(update_fields=["changed"])
    return batch


# --- large lists: as a job, a range of pair ids at a time ------------------------------------------------------

# Above this many pairs a decision or an undo runs as a job: 20,000 pairs took 4.3-4.5 s in one statement on the
# shared 2-core machine at load 9 (bench/decisions.py, BENCHMARKS.md), as long as a request should wait.
INLINE_MAX_PAIRS = 20_000
# Pairs of the dataset per job step (each step one locking INSERT … SELECT and one UPDATE … FROM over the list's
# pairs in its id range), committed with the job's progress: a few seconds a step, as above.
CHUNK_PAIRS = 20_000
DECIDE_KIND, UNDO_KIND = "decision", "decision_undo"


def start_decision(dataset, params, action, user, reason):
    """Decide a pair list (GET parameters or a query string): at once when it is small, else as a job."""
    pairs, filters = _list_pairs(dataset, params)
    counts = preview(dataset, pairs, action)
    if counts["change"] <= INLINE_MAX_PAIRS:
        return decide(dataset, pairs, action, user, reason, selection=filters.urlencode())
    action = _action(action)
    reason = (reason or "").strip()
    if action == Action.POLICY or not reason or len(reason) > REASON_MAX:
        decide(dataset, [], action, user, reason)  # raises the error that says why
    with transaction.atomic():
        batch = DecisionBatch.objects.create(dataset=dataset, action=action, actor=user, reason=reason,
                                             selection=filters.urlencode()[:2000],
                                             unchanged={"already": counts["already"], "withdrawn": counts["withdrawn"]})
        batch.job = create_job(DECIDE_KIND, dataset=dataset, user=user, params={"batch": batch.pk})
        batch.save(update_fields=["job"])
    return batch


def start_undo(batch, user):
    """Undo a batch: at once when it changed few pairs, else as a job (the batch is marked undone when it starts)."""
    if batch.changed <= INLINE_MAX_PAIRS:
        return undo(batch, user)
    with transaction.atomic():
        batch = DecisionBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.undone_at is not None:
            raise DecisionError(_("Decision %(pk)s was undone already.") % {"pk": batch.pk})
        if batch.job_id and batch.job.finished_at is None:
            raise DecisionError(_("Decision %(pk)s is still being made; undo it when its job is done.")
                                % {"pk": batch.pk})
        batch.undone_at, batch.undone_by = timezone.now(), user
        batch.job = create_job(UNDO_KIND, dataset=batch.dataset, user=user, params={"batch": batch.pk})
        batch.save(update_fields=["undone_at", "undone_by", "job"])
    return batch


def _ranges(table, column, where, params, after):
    """(lo, hi] pair id ranges of CHUNK_PAIRS ids each, from `after` on, of `column` in the rows of `table` that
    `where` selects (keyset: each range one index scan)."""
    with connection.cursor() as cursor:
        while True:
            cursor.execute(f"SELECT max(x) FROM (SELECT {column} AS x FROM {table} WHERE {where} AND {column} > %s "
                           f"ORDER BY {column} LIMIT %s) page", [*params, after, CHUNK_PAIRS])
            hi = cursor.fetchone()[0]
            if hi is None:
                return
            yield after, hi
            after = hi


# They change data (statuses): like any such job, a finished one makes the dashboards and the stored lists stale
# (no stored list reads statuses, so that is conservative; an inline decision leaves the stored lists current).
@job_kind(DECIDE_KIND, label=pgettext_lazy("job kind", "decision"), unit="pairs",
          counts={"changed": gettext_lazy("Pairs changed")})
def run_decision(ctx):
    batch = DecisionBatch.objects.select_related("dataset").get(pk=ctx.params["batch"])
    pairs, form = select_pairs(batch.dataset, QueryDict(batch.selection))
    if pairs is None:
        raise JobFailed("; ".join(str(e) for errors in form.errors.values() for e in errors))
    if not ctx.job.total:
        ctx.set_total(Pair.objects.filter(dataset=batch.dataset).count())
    for lo, hi in _ranges("annotation_pair", "id", "dataset_id = %s", [batch.dataset_id], ctx.cursor.get("after", 0)):
        sql, params = _pair_sql(batch.dataset, pairs.filter(pk__gt=lo, pk__lte=hi))
        with transaction.atomic():
            changed = _record_and_apply(batch, sql, params, target="%(target)s",
                                        extra={"target": TARGET[batch.action]})
            DecisionBatch.objects.filter(pk=batch.pk).update(changed=F("changed") + changed)
            done = Pair.objects.filter(dataset=batch.dataset, pk__gt=lo, pk__lte=hi).count()
            ctx.commit(done=done, counts={"changed": changed}, cursor={"after": hi})


@job_kind(UNDO_KIND, label=pgettext_lazy("job kind", "decision_undo"), unit="pairs",
          counts={"restored": gettext_lazy("Pairs put back")})
def run_undo(ctx):
    batch = DecisionBatch.objects.get(pk=ctx.params["batch"])
    if not ctx.job.total:
        ctx.set_total(batch.changed)
    for lo, hi in _ranges("review_pairdecision", "pair_id", "batch_id = %s", [batch.pk], ctx.cursor.get("after", 0)):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("""SELECT p.id FROM annotation_pair p JOIN review_pairdecision d ON d.pair_id = p.id
                              WHERE d.batch_id = %s AND d.pair_id > %s AND d.pair_id <= %s
                              ORDER BY p.id FOR NO KEY UPDATE OF p""", [batch.pk, lo, hi])
            cursor.execute(_UNDO.replace("WHERE d.batch_id = %(batch)s",
                                         "WHERE d.batch_id = %(batch)s AND d.pair_id > %(lo)s AND d.pair_id <= %(hi)s"),
                           {"batch": batch.pk, "tag": batch.tag(), "lo": lo, "hi": hi})
            restored = cursor.fetchone()[0]
            DecisionBatch.objects.filter(pk=batch.pk).update(restored=F("restored") + restored,
                                                              left=F("changed") - F("restored") - restored)
            in_range = PairDecision.objects.filter(batch=batch, pair_id__gt=lo, pair_id__lte=hi).count()
            ctx.commit(done=in_range, counts={"restored": restored}, cursor={"after": hi})


def pairs_of_selection(dataset, selection):
    """The pairs of a list's query string, or (None, errors)."""
    filters = QueryDict(selection).copy()
    for name in ("after", "page", "at", "audit", "blind"):
        filters.pop(name, None)
    pairs, form = select_pairs(dataset, filters)
    errors = [] if pairs is not None else [str(e) for errs in form.errors.values() for e in errs]
    return pairs, errors

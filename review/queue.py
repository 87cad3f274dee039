"""The review queue: which pair a reviewer gets next, and what submitting, skipping and undoing do.

A queue is a list of pairs (any `PairFilter` list of a dataset, or an audit's sample) and an overlap k:
each pair goes to at most k different reviewers (k = 1: never to two). A pair handed out is held by a
`ReviewAssignment` with a lease; while the lease runs it counts as taken, so a reviewer who closes the
tab loses the pair only when the lease expires. Skipping gives the pair back to the others.

Handing out is race-free without a lock on the whole queue: candidates are read without locks, then
one candidate at a time is locked with `SELECT … FOR NO KEY UPDATE SKIP LOCKED` and its count of
reviewers is read again under the lock, in a new statement (READ COMMITTED: the `INSERT … SELECT … WHERE
count < k` that writes the assignment), so an assignment another reviewer committed a moment ago is seen.
Two reviewers never hold the same pair's lock together, and the one who comes second sees the first
one's assignment.

Speed (the queue's budget is 150 ms p95 per request with four reviewers at once, BENCHMARKS.md): the
hot paths are a few hand-written statements rather than ORM round trips: a submit locks the reviewer's
assignment and review in one statement and writes review, change record and assignment in one more, and
the view commits it together with the hold on the next pair (one commit per verdict).
"""

import hashlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError

from annotation.models import Judgement, Pair, RewardModel, RewardScore

from . import decisions
from .models import Audit, Review, ReviewAssignment, ReviewEvent, ReviewSettings
from .selections import keyset_ids, select_pairs

log = logging.getLogger(__name__)

# Candidates read per round before locking them one by one: more than the reviewers working at once,
# so a round rarely ends with every candidate locked by someone else.
CANDIDATE_BATCH = 16
# Parameters of a queue's URL that are not part of its list.
NOT_FILTERS = {"at", "audit", "page", "blind"}


class QueueError(Exception):
    """A submit the queue refuses (a pair not handed to this reviewer, a lease lost to another one)."""


@dataclass
class Queue:
    dataset: object
    pairs: object  # queryset of the pairs in the queue
    k: int
    key: str  # identifies the queue in assignments: its history, j/k and undo stay inside it
    query: str  # URL query string that rebuilds the queue
    blind: bool
    audit: Audit | None = None
    order: str = ""  # the list's order (PairFilter's `order`): pairs are handed out in it
    list_query: str = ""  # `query` without the blind switch

    @classmethod
    def from_params(cls, dataset, params, may_unblind=False):
        """(queue, None) for GET-style params, or (None, filter form with errors). Blind review follows the
        dataset's setting; `blind=0` in the params opens the queue unblinded, but only for those who
        `may_unblind` (the dataset's admins): for a reviewer a queue stays blind whatever its URL says."""
        queue, form = cls._from_params(dataset, params)
        if queue is not None:
            queue.list_query = queue.query
        if queue is not None and params.get("blind") in ("0", "1"):
            unblind = params.get("blind") == "0"
            if not unblind or may_unblind:
                queue.blind = not unblind
                queue.query = f"{queue.query}&blind={params.get('blind')}" if queue.query else f"blind={params.get('blind')}"
        return queue, form

    @classmethod
    def _from_params(cls, dataset, params):
        review_settings = ReviewSettings.of(dataset)
        audit_id = params.get("audit")
        if audit_id:
            audit = Audit.objects.filter(pk=audit_id if str(audit_id).isdigit() else 0, dataset=dataset).first()
            if audit is None:
                return None, None
            return cls.for_audit(audit, review_settings), None
        filters = QueryDict(mutable=True)
        for name in sorted(params):
            if name not in NOT_FILTERS:
                filters.setlist(name, [v for v in params.getlist(name) if v != ""])
        pairs, form = select_pairs(dataset, filters)
        if pairs is None:
            return None, form
        query = filters.urlencode()
        key = f"d{dataset.pk}?{query}"
        if len(key) > 200:
            key = f"d{dataset.pk}#{hashlib.sha1(query.encode()).hexdigest()}"
        return cls(dataset, pairs, review_settings.reviews_per_pair, key, query, review_settings.blind_review,
                   order=filters.get("order", "")), None

    @classmethod
    def for_audit(cls, audit, review_settings=None):
        review_settings = review_settings or ReviewSettings.of(audit.dataset)
        pairs = Pair.objects.filter(dataset=audit.dataset, pk__in=audit.pair_ids).order_by("pk")
        return cls(audit.dataset, pairs, audit.reviews_per_pair, f"audit:{audit.pk}", urlencode({"audit": audit.pk}),
                   review_settings.blind_review, audit)


def lease():
    return timedelta(seconds=settings.REVIEW_LEASE_SECONDS)


def _reviewers_of(pair_id, reviewer, now):
    """How many reviewers have the pair: those who reviewed it and others who hold it under a live lease."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM (
                   SELECT reviewer_id FROM review_review WHERE pair_id = %(pair)s
                   UNION
                   SELECT reviewer_id FROM review_reviewassignment
                   WHERE pair_id = %(pair)s AND reviewer_id <> %(me)s
                     AND (status = 'done' OR (status = 'assigned' AND expires_at > %(now)s))) taken""",
            {"pair": pair_id, "me": reviewer.pk, "now": now},
        )
        return cursor.fetchone()[0]


def _candidates(queue, reviewer, now):
    done_or_skipped = Q(status__in=[ReviewAssignment.Status.DONE, ReviewAssignment.Status.SKIPPED])
    if queue.k == 1:
        # The common case as two anti-joins (no review; no assignment that takes the pair: mine done or
        # skipped, another reviewer's done or live), which PostgreSQL runs as index probes in pair id order.
        taken = ReviewAssignment.objects.filter(
            (Q(reviewer=reviewer) & done_or_skipped)
            | (~Q(reviewer=reviewer) & (Q(status=ReviewAssignment.Status.DONE)
                                        | Q(status=ReviewAssignment.Status.ASSIGNED, expires_at__gt=now))),
            pair=OuterRef("pk"))
        return queue.pairs.filter(~Exists(Review.objects.filter(pair=OuterRef("pk"))), ~Exists(taken))
    mine = ReviewAssignment.objects.filter(done_or_skipped, pair=OuterRef("pk"), reviewer=reviewer)
    reviewed_by_me = Review.objects.filter(pair=OuterRef("pk"), reviewer=reviewer)
    taken = RawSQL(
        """(SELECT count(*) FROM (SELECT r.reviewer_id FROM review_review r WHERE r.pair_id = annotation_pair.id
               UNION SELECT a.reviewer_id FROM review_reviewassignment a WHERE a.pair_id = annotation_pair.id
               AND a.reviewer_id <> %s AND (a.status = 'done' OR (a.status = 'assigned' AND a.expires_at > %s))) t)""",
        [reviewer.pk, now],
    )
    return queue.pairs.filter(~Exists(mine), ~Exists(reviewed_by_me)).alias(taken=taken).filter(taken__lt=queue.k)


# The reviewer's live hold in this queue, and whether they reviewed that pair meanwhile (in another tab).
_HELD = """
    SELECT a.*, EXISTS (SELECT 1 FROM review_review r WHERE r.pair_id = a.pair_id AND r.reviewer_id = a.reviewer_id)
                AS reviewed
    FROM review_reviewassignment a
    WHERE a.reviewer_id = %(me)s AND a.queue_key = %(key)s AND a.status = 'assigned' AND a.expires_at > %(now)s
    ORDER BY a.id LIMIT 1"""


def next_assignment(queue, reviewer):
    """The assignment the reviewer works on now: the one they hold in this queue, else a new one; None when
    the queue has nothing left for them."""
    now = timezone.now()
    held = next(iter(ReviewAssignment.objects.raw(_HELD, {"me": reviewer.pk, "key": queue.key, "now": now})), None)
    if held is not None:
        if held.reviewed:
            held.status, held.done_at = ReviewAssignment.Status.DONE, now
            held.save(update_fields=["status", "done_at"])
        else:
            if held.expires_at < now + lease() / 2:  # renewed only when half used: a reload is then a pure read
                held.expires_at = now + lease()
                held.save(update_fields=["expires_at"])
            return held
    after = None
    while True:
        # keyset_ids: a stored order (most suspicious first) is a walk down its index, not a sort of the list
        ids = keyset_ids(_candidates(queue, reviewer, now), queue.dataset, queue.order, after, limit=CANDIDATE_BATCH)
        if not ids:
            return None
        for pair_id in ids:
            assignment = _try_assign(queue, reviewer, pair_id, now)
            if assignment is not None:
                return assignment
        after = ids[-1]


# Counted again after the pair's lock is taken, in a statement of its own so that it sees assignments
# committed meanwhile; the assignment is written only if the pair is still free (k not reached).
_ASSIGN_IF_FREE = """
    INSERT INTO review_reviewassignment (pair_id, reviewer_id, queue_key, status, assigned_at, expires_at, done_at,
                                         rejected_first)
    SELECT %(pair)s, %(me)s, %(key)s, 'assigned', %(now)s, %(expires)s, NULL, %(rejected_first)s
    WHERE (SELECT count(*) FROM (
               SELECT reviewer_id FROM review_review WHERE pair_id = %(pair)s
               UNION
               SELECT reviewer_id FROM review_reviewassignment
               WHERE pair_id = %(pair)s AND reviewer_id <> %(me)s
                 AND (status = 'done' OR (status = 'assigned' AND expires_at > %(now)s))) taken) < %(k)s
    ON CONFLICT (pair_id, reviewer_id) DO UPDATE
    SET queue_key = EXCLUDED.queue_key, status = EXCLUDED.status, assigned_at = EXCLUDED.assigned_at,
        expires_at = EXCLUDED.expires_at, done_at = NULL,
        rejected_first = coalesce(review_reviewassignment.rejected_first, EXCLUDED.rejected_first)
    RETURNING id, rejected_first"""


def _try_assign(queue, reviewer, pair_id, now):
    params = {"pair": pair_id, "me": reviewer.pk, "key": queue.key, "now": now, "expires": now + lease(), "k": queue.k,
              "rejected_first": draw_order()}
    # No savepoint: nothing here fails half-way, and inside a submit's transaction a savepoint is two more round trips.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM annotation_pair WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED", [pair_id])
        if cursor.fetchone() is None:
            return None
        cursor.execute(_ASSIGN_IF_FREE, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return _loaded(ReviewAssignment(pk=row[0], pair_id=pair_id, reviewer=reviewer, queue_key=queue.key,
                                    status=ReviewAssignment.Status.ASSIGNED, assigned_at=now,
                                    expires_at=params["expires"], done_at=None, rejected_first=row[1]))


def _loaded(instance):
    """Mark an instance built from a row just written as one that exists in the database."""
    instance._state.adding, instance._state.db = False, "default"
    return instance


# The reviewer's assignment and review of one pair, both locked (a locking sub-select on each side, since a
# locking clause cannot apply to the nullable side of an outer join).
_LOCK_MINE = """
    SELECT a.status, a.expires_at, r.id, r.verdict, r.better_correct, r.prompt_ok, r.note, r.blind, r.rejected_first
    FROM (SELECT 1) one
    LEFT JOIN (SELECT status, expires_at FROM review_reviewassignment
               WHERE pair_id = %(pair)s AND reviewer_id = %(me)s FOR UPDATE) a ON true
    LEFT JOIN (SELECT id, verdict, better_correct, prompt_ok, note, blind, rejected_first FROM review_review
               WHERE pair_id = %(pair)s AND reviewer_id = %(me)s FOR UPDATE) r ON true"""

# Save the review, record the change and mark the assignment done (creating it for a review reached
# outside the queue) in one statement; it returns how many reviews the pair had before (the statement does
# not see its own insert) and the transaction's id, for the queue's progress counts.
_SAVE_REVIEW = """
    WITH saved AS (
        INSERT INTO review_review
            (pair_id, reviewer_id, verdict, better_correct, prompt_ok, note, blind, rejected_first, created_at,
             updated_at, dataset_id, domain)
        VALUES (%(pair)s, %(me)s, %(verdict)s, %(better_correct)s, %(prompt_ok)s, %(note)s, %(blind)s,
                %(rejected_first)s, %(now)s, %(now)s, %(dataset)s, %(domain)s)
        ON CONFLICT (pair_id, reviewer_id) DO UPDATE
        SET verdict = EXCLUDED.verdict, better_correct = EXCLUDED.better_correct, prompt_ok = EXCLUDED.prompt_ok,
            note = EXCLUDED.note, blind = EXCLUDED.blind, rejected_first = EXCLUDED.rejected_first,
            updated_at = EXCLUDED.updated_at
        RETURNING id, created_at),
    event AS (
        INSERT INTO review_reviewevent (review_id, pair_id, actor_id, at, before, after, kind, undone)
        SELECT id, %(pair)s, %(me)s, %(now)s, %(before)s, %(after)s, 'submit', false FROM saved),
    done AS (
        INSERT INTO review_reviewassignment (pair_id, reviewer_id, queue_key, status, assigned_at, expires_at, done_at)
        VALUES (%(pair)s, %(me)s, %(key)s, 'done', %(now)s, %(now)s, %(now)s)
        ON CONFLICT (pair_id, reviewer_id) DO UPDATE SET status = 'done', done_at = EXCLUDED.done_at
        WHERE review_reviewassignment.status <> 'done')
    SELECT id, created_at, (SELECT count(*) FROM review_review WHERE pair_id = %(pair)s), pg_current_xact_id()::text
    FROM saved"""


def submit(queue, reviewer, pair, values):
    """Save the reviewer's verdict on `pair` (values in chosen/rejected terms) and record the change."""
    now = timezone.now()
    mine = {"pair": pair.pk, "me": reviewer.pk}
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Verdicts on one pair go one at a time (a first review, the k-th one: counted exactly in the progress
        # line); the pair before the reviewer's rows, the order next_assignment takes them in.
        cursor.execute("SELECT 1 FROM annotation_pair WHERE id = %(pair)s FOR NO KEY UPDATE", mine)
        cursor.execute(_LOCK_MINE, mine)
        status, expires_at, review_id, *old = cursor.fetchone()
        if status is None and review_id is None:
            raise QueueError(_("This pair was not handed to you by the queue."))
        if (review_id is None and status != ReviewAssignment.Status.DONE and expires_at <= now
                and _reviewers_of(pair.pk, reviewer, now) >= queue.k):
            raise QueueError(_("Your hold on this pair ran out and it went to another reviewer."))
        review = Review(pair=pair, reviewer=reviewer, **values)
        before = dict(zip(["verdict", "better_correct", "prompt_ok", "note", "blind", "rejected_first"], old)) \
            if review_id else None
        cursor.execute(_SAVE_REVIEW, {**mine, **review.snapshot(), "now": now, "key": queue.key,
                                      "dataset": pair.dataset_id, "domain": pair.domain,
                                      "before": Jsonb(before) if before else None, "after": Jsonb(review.snapshot())})
        review.pk, review.created_at, reviews_before, xid = cursor.fetchone()
        review.updated_at = now
        # With a quorum set, the reviews decide the pair's status (nothing to do, not even a query, without one).
        decisions.apply_review_policy(queue.dataset, [pair.pk], user=reviewer)
    if review_id is None:  # a new review, not a changed verdict
        first, completed = reviews_before == 0, reviews_before + 1 == queue.k
        transaction.on_commit(lambda: _count_verdict(queue, xid, first, completed), robust=True)
    return _loaded(review)


def review_values(queue, pair, reviewer, choice, better_correct, prompt_ok, note):
    """A review's fields from the verdict the reviewer gave in the A/B terms they saw (the queue page and the
    API): in chosen/rejected terms, with the order shown; "both bad" has no better response to call correct."""
    swapped = shown_order(queue, pair, reviewer)
    verdict = verdict_from_ab(choice, swapped)
    both_bad = verdict == Review.Verdict.BOTH_BAD
    return {"verdict": verdict, "better_correct": None if both_bad else better_correct, "prompt_ok": prompt_ok,
            "note": note, "blind": queue.blind, "rejected_first": swapped}


def skip(queue, reviewer, pair):
    """Give the pair back to the other reviewers; this reviewer is not offered it again."""
    held = ReviewAssignment.objects.filter(pair=pair, reviewer=reviewer, status=ReviewAssignment.Status.ASSIGNED)
    return held.update(status=ReviewAssignment.Status.SKIPPED, expires_at=timezone.now())


def undo(queue, reviewer):
    """Revert the reviewer's last submit in this queue that is not undone yet: the review gets its state before
    that submit back, or is deleted when the submit created it (the pair is then held by the reviewer again).
    Returns the pair, or None when there is nothing to undo."""
    now = timezone.now()
    with transaction.atomic():
        event = (ReviewEvent.objects.select_for_update(of=("self",))
                 .filter(actor=reviewer, kind="submit", undone=False,
                         pair__assignments__reviewer=reviewer, pair__assignments__queue_key=queue.key)
                 .select_related("pair").order_by("-at", "-pk").first())
        if event is None:
            return None
        review = Review.objects.select_for_update().filter(pair=event.pair, reviewer=reviewer).first()
        current = review.snapshot() if review else None
        if event.before is None:
            if review is not None:
                review.delete()
            ReviewAssignment.objects.filter(pair=event.pair, reviewer=reviewer).update(
                status=ReviewAssignment.Status.ASSIGNED, expires_at=now + lease(), done_at=None, queue_key=queue.key)
            review = None
        else:
            if review is None:
                review = Review(pair=event.pair, reviewer=reviewer, created_at=now)
            for field, value in event.before.items():
                setattr(review, field, value)
            review.updated_at = now
            review.save()
        ReviewEvent.objects.create(review=review, pair=event.pair, actor=reviewer, at=now, before=current,
                                   after=event.before, kind="undo")
        event.undone = True
        event.save(update_fields=["undone"])
        decisions.apply_review_policy(queue.dataset, [event.pair_id], user=reviewer)
        return event.pair


def history(queue, reviewer):
    """The reviewer's done assignments in this queue, in the order they were handed out."""
    return ReviewAssignment.objects.filter(reviewer=reviewer, queue_key=queue.key,
                                           status=ReviewAssignment.Status.DONE).order_by("pk")


def position(queue, reviewer, current):
    """(previous, next, done) around `current` in the reviewer's history: the assignment ids before and after
    it (next is None for a fresh pair) and how many pairs the reviewer has done in this queue; one query."""
    at = current.pk if current is not None else None
    in_history = current is not None and current.status == ReviewAssignment.Status.DONE
    wanted = {"done": Count("pk"), "previous": Max("pk", filter=Q(pk__lt=at)) if at else Max("pk")}
    if in_history:
        wanted["following"] = Min("pk", filter=Q(pk__gt=at))
    found = history(queue, reviewer).order_by().aggregate(**wanted)
    return found["previous"], found.get("following"), found["done"]


_RANDOM = random.SystemRandom()


def draw_order():
    """Whether response A shows the rejected response: a fair coin, drawn when a pair is handed to a reviewer and
    recorded on the assignment (then on the review), so the order is random per pair yet known afterwards."""
    return _RANDOM.random() < 0.5


def rejected_first(assignment):
    """The order recorded on the assignment; drawn and saved now for one handed out before orders were recorded."""
    if assignment.rejected_first is None:
        assignment.rejected_first = draw_order()
        ReviewAssignment.objects.filter(pk=assignment.pk, rejected_first__isnull=True).update(
            rejected_first=assignment.rejected_first)
    return assignment.rejected_first


def shown_order(queue, pair, reviewer):
    """Whether A showed the rejected response to this reviewer in this queue (never when the queue is not blind)."""
    if not queue.blind:
        return False
    assignment = ReviewAssignment.objects.filter(pair=pair, reviewer=reviewer).first()
    return rejected_first(assignment) if assignment is not None else False


VERDICT_FROM_KEY = {"a": "chosen_better", "b": "rejected_better", "tie": "tie", "both_bad": "both_bad"}


def verdict_from_ab(choice, swapped):
    """A/B verdict → chosen/rejected verdict, given whether A shows the rejected response."""
    verdict = VERDICT_FROM_KEY[choice]
    if swapped and verdict in ("chosen_better", "rejected_better"):
        verdict = "rejected_better" if verdict == "chosen_better" else "chosen_better"
    return verdict


def ab_from_verdict(verdict, swapped):
    if verdict == "chosen_better":
        return "b" if swapped else "a"
    if verdict == "rejected_better":
        return "a" if swapped else "b"
    return verdict


def item(queue, reviewer, assignment):
    """Everything the page shows about one pair for this reviewer."""
    pair = (Pair.objects.select_related("prompt", "chosen", "rejected").get(pk=assignment.pair_id))
    swapped = queue.blind and rejected_first(assignment)
    reviews = list(Review.objects.filter(pair=pair).select_related("reviewer").order_by("created_at", "pk"))
    mine = next((r for r in reviews if r.reviewer_id == reviewer.pk), None)
    sides = [("chosen", pair.chosen), ("rejected", pair.rejected)]
    if swapped:
        sides.reverse()
    responses = [{"letter": letter, "side": side, "response": response}
                 for letter, (side, response) in zip("AB", sides)]
    context = {"pair": pair, "assignment": assignment, "responses": responses, "mine": mine,
               "choice": ab_from_verdict(mine.verdict, swapped) if mine else "",
               "better_correct": mine.better_correct is not False if mine else True,
               "prompt_ok": mine.prompt_ok is not False if mine else True,
               "blind": queue.blind, "history_item": assignment.status == ReviewAssignment.Status.DONE}
    if not queue.blind or mine is not None:  # blind: no one else's verdict before one's own is in
        context["others"] = [r for r in reviews if r.reviewer_id != reviewer.pk]
    if not queue.blind:
        judgements = _judgements([pair.chosen_id, pair.rejected_id])
        for entry in responses:
            entry["judgements"] = judgements.get(entry["response"].pk, [])
        context["reward"] = _reward_margin(pair)
    return context


def _judgements(response_ids):
    """{response id: [each judge's latest ok judgement]}, in judge name order."""
    by_response = {}
    for judgement in Judgement.objects.latest_ok(response_ids).select_related("judge").order_by("judge__name"):
        by_response.setdefault(judgement.response_id, []).append(judgement)
    return by_response


def _reward_margin(pair):
    """r(chosen) − r(rejected) by the dataset's newest reward model (the one the pair list's margin filter
    and the exports use), or None when it has not scored both responses."""
    scores = list(RewardScore.objects.filter(reward_model_id=_newest_reward_model_id(pair.dataset_id),
                                             response_id__in=[pair.chosen_id, pair.rejected_id])
                  .select_related("reward_model"))
    if len(scores) < 2:
        return None
    rewards = {s.response_id: s.reward for s in scores}
    return {"model": scores[0].reward_model, "margin": rewards[pair.chosen_id] - rewards[pair.rejected_id]}


def _newest_reward_model_id(dataset_id):
    """RewardModel.objects.newest_for the dataset (its id, 0 for none), reused as long as the queue's counts:
    finding it costs half a second at a million scores when a newer model scored only other datasets, too much
    for every item; a model that scores the dataset shows within a minute."""
    key = f"review-queue-reward-model:{dataset_id}"
    try:
        model_id = cache.get(key)
    except RedisError:
        model_id = None
    if model_id is None:
        model = RewardModel.objects.newest_for(dataset_id)
        model_id = model.pk if model else 0
        try:
            cache.set(key, model_id, PROGRESS_CACHE_SECONDS)
        except RedisError:
            log.warning("the cache is unreachable: the newest reward model is looked up on every item", exc_info=True)
    return model_id


# How long a queue's counts (list size, pairs reviewed) are reused. Counting them at a million pairs joins
# the reviews to the dataset's pairs: ~250 ms with 20,000 reviews (BENCHMARKS.md), too much to pay after
# every verdict of every reviewer. The counts live in the shared cache (Redis), so that every web process
# shows the same ones, and a verdict given in the queue is added to them at once (_count_verdict); the
# reviewer's own count stays live.
PROGRESS_CACHE_SECONDS = 60


def progress(queue, reviewer):
    """Counts for the queue's progress line: pairs in it, pairs reviewed, pairs with k reviews (counted at
    most once a minute per queue, with the time they were counted, plus the verdicts given in the queue
    since), and this reviewer's reviews in it (live). They never go down while no review is undone."""
    key = _progress_key(queue)
    mine = history(queue, reviewer).count()
    try:
        counted = cache.get(key)
        if counted is None:
            counted = _count(queue)
            # The first count stored is the one everybody sees until it expires (not the last one written,
            # which may be the older of two counted at once).
            if not cache.add(key, counted, PROGRESS_CACHE_SECONDS):
                counted = cache.get(key) or counted
        added = cache.get_many([_added_key(key, counted, name) for name in ("reviewed", "complete")])
    except RedisError:
        log.warning("the cache is unreachable: the review progress is counted live", exc_info=True)
        counted, added = _count(queue), {}
    reviewed = counted["reviewed"] + added.get(_added_key(key, counted, "reviewed"), 0)
    complete = counted["complete"] + added.get(_added_key(key, counted, "complete"), 0)
    # Every pair this reviewer reviewed in the queue is a reviewed pair of it.
    return {"total": counted["total"], "reviewed": max(reviewed, mine), "complete": complete, "at": counted["at"],
            "mine": mine, "k": queue.k}


def _progress_key(queue):
    return "review-queue-progress:" + hashlib.sha1(queue.key.encode()).hexdigest()


def _added_key(key, counted, name):
    # Verdicts added to one count (a new count starts from zero, under its own id).
    return f"{key}:{counted['id']}:{name}"


def _count(queue):
    at = timezone.now()
    reviewed, complete, snapshot = _reviewed(queue)
    return {"id": uuid.uuid4().hex, "total": queue.pairs.count(), "reviewed": reviewed, "complete": complete,
            "snapshot": snapshot, "at": at}


def _reviewed(queue):
    """(pairs of the queue with a review, pairs with k, the PostgreSQL snapshot that counted them): counted
    from the reviews side (a dataset has far fewer reviews than pairs) in one query: an audit's reviews by
    its pair ids, a whole dataset's through its pairs, a filtered list's through the list as a subquery."""
    if queue.audit is not None:
        reviews = Review.objects.filter(pair_id__in=queue.audit.pair_ids)
    elif queue.query:
        reviews = Review.objects.filter(pair__in=queue.pairs.order_by().values("pk"))
    else:
        reviews = Review.objects.filter(dataset=queue.dataset)
    try:
        sql, params = reviews.order_by().values("pair").annotate(n=Count("pk")).values("n").query.sql_with_params()
    except EmptyResultSet:  # an audit without pairs
        sql, params = "SELECT 0 WHERE false", ()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE t.n >= %s), pg_current_snapshot()::text "
                       f"FROM ({sql}) t(n)", [queue.k, *params])
        return cursor.fetchone()


def _count_verdict(queue, xid, first, completed):
    """After a new review in the queue commits: add it to the queue's stored counts, unless the snapshot
    that counted them already saw its transaction (then it is in them, and adding it would count it twice)."""
    key = _progress_key(queue)
    counted = cache.get(key)
    if counted is None or _sees(counted["snapshot"], int(xid)):
        return
    for name, hit in (("reviewed", first), ("complete", completed)):
        if hit:
            added = _added_key(key, counted, name)
            # Outlives the count it adds to (created while that count is stored), so incr finds it.
            cache.add(added, 0, 2 * PROGRESS_CACHE_SECONDS)
            cache.incr(added)


def _sees(snapshot, xid):
    """Whether a committed transaction is visible in a PostgreSQL snapshot "xmin:xmax:xip,…"."""
    xmin, xmax, in_progress = snapshot.split(":")
    return xid < int(xmin) or (xid < int(xmax) and str(xid) not in in_progress.split(","))

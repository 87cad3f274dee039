"""Stored members of costly named selections: the list behind a number, precomputed by the job that
counts it, so that a page of it costs an index scan instead of a pass over a million pairs' texts.

A view registered with `@materialised(name, stored_at)` (under its `@selection`) is served at its
default settings from its SelectionMember rows while they are current, and by the live query
otherwise (other settings are always live). `stored_at(dataset, name)` says when the job that stored
them began (None: not stored); they are current while no job of the dataset that may change its data has
finished since then or is under way now. Who stores them:
- the judge-based disagreement views: the dashboard refresh (review/dashboards.py, disagreement_data);
- the low-quality rules that read texts, judgements or duplicates: the `quality_counts` job
  (review/quality_rules.py).
A pair's status set on its page (unfilter) changes no stored list: no materialised view reads status.
"""

import functools

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q

from annotation.jobs import read_only_kinds
from annotation.models import Job

from .models import SelectionMember
from .selections import REGISTRY


def unchanged_since(dataset, at):
    """No job of the dataset that may change its data (JobKind.changes_data: none of the others changes what a
    selection selects) finished after `at` or is under way now."""
    changed = Q(finished_at__gt=at) | Q(finished_at__isnull=True)
    return not Job.objects.filter(dataset=dataset).exclude(kind__in=read_only_kinds()).filter(changed).exists()


def materialised(name, stored_at):
    """Serve the view at its default settings from its stored members while they are current; the live
    query otherwise. `narrow.live` is the live query, `narrow.stored_at` the source's date."""

    def wrap(fn):
        @functools.wraps(fn)
        def narrow(pairs, dataset, settings):
            if served_from(REGISTRY[name], dataset, settings) is not None:
                return pairs.filter(pk__in=SelectionMember.objects.filter(dataset=dataset, view=name)
                                    .values("pair_id"))
            return fn(pairs, dataset, settings)

        narrow.live = fn
        narrow.stored_at = stored_at
        return narrow

    return wrap


def served_from(view, dataset, settings):
    """When the stored members that answer `view` with `settings` were computed, or None when the live
    query answers (not a materialised view, other settings, never stored, or a job changed the data since)."""
    stored_at = getattr(view.narrow, "stored_at", None)
    if stored_at is None or settings != view.settings:
        return None
    at = stored_at(dataset, view.name)
    return at if at is not None and unchanged_since(dataset, at) else None


def store(dataset, view, pairs):
    """Replace the view's stored members with `pairs` (a queryset of the dataset's pairs), in SQL.
    Call inside the transaction that records what was stored, so readers see the old rows or the new."""
    SelectionMember.objects.filter(dataset=dataset, view=view.name).delete()
    try:
        sql, params = pairs.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # pairs.none(), e.g. no reward model scored the dataset
        return
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO review_selectionmember (dataset_id, view, pair_id) "
                       f"SELECT %s, %s, t.id FROM ({sql}) AS t(id)", [dataset.pk, view.name, *params])


def stored(dataset, view):
    """The pairs stored as the view's members (a queryset)."""
    from annotation.models import Pair

    return Pair.objects.filter(pk__in=SelectionMember.objects.filter(dataset=dataset, view=view.name)
                               .values("pair_id"))

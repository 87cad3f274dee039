"""One page of a pair list: the rows of the pairs a `PairFilter` selects, at a keyset position in the list's
order (after, before or at a pair), or with the text search walked a page at a time. The pair list page and
the API's pair list both read it."""

from dataclasses import dataclass

from django.db.models import F, Value
from django.db.models.functions import Greatest, Left, Lower, StrIndex, Substr

from annotation.models import Domain, Pair

from . import search
from .selections import keyset_ids

# Rows a page shows. Keyset pagination, so page 1,000 costs what page 1 does.
PAGE_SIZE = 50
# Characters of each text a row shows (cut in SQL: responses run to 200,000 characters), and how many of them
# come before a searched word.
EXCERPT = 140
EXCERPT_LEAD = 30

COLUMNS = ("pk", "domain", "status", "status_reason", "chosen_score", "rejected_score", "prompt_excerpt",
           "chosen_excerpt", "rejected_excerpt", "suspicion_score")


@dataclass
class PairPage:
    rows: list
    next_after: int | None  # the keyset position of the next page; None on the last one
    found: object  # search.page's result when the list searches text, else None


def pair_page(form, dataset, after=None, size=PAGE_SIZE):
    """The page of the valid `form`'s pairs of `dataset` that follows pair `after` (None: the first page), in
    the form's order (the API's pages)."""
    text = form.cleaned_data.get("q")
    pairs = form.pairs(dataset, search_text=False)
    if text:
        rows, page, found = search_page(pairs, dataset, text, after, size)
    else:
        rows, page = keyset_page(pairs, dataset, form.cleaned_data.get("order") or "",
                                 {"after": after, "before": None, "at": None}, size)
        found = None
    label_rows(rows)
    return PairPage(rows, page.get("next"), found)


def search_page(pairs, dataset, text, after, size=PAGE_SIZE):
    """(rows, {"next": pk, "first": bool}, found) of a text search's page after pair `after`."""
    found = search.page(pairs, dataset, text, after, limit=size + 1)
    rows, page = page_rows(Pair.objects.filter(pk__in=found.ids).order_by("pk"), text, size), {}
    if len(rows) > size:
        rows, page["next"] = rows[:size], rows[size - 1]["pk"]
    elif found.walked_to:
        page["next"] = found.walked_to  # the walk stopped there: "continue" searches on from it
    page["first"] = bool(after)
    return rows, page, found


def keyset_page(pairs, dataset, order, position, size=PAGE_SIZE):
    """(rows, {"next": pk, "previous": pk, "first": bool}) of the page after, before or at a pair, keyset all the
    way: `before` reads the previous page backwards and turns it round."""
    if position["before"]:
        ids = keyset_ids(pairs, dataset, order, position["before"], backward=True, limit=size + 1)[::-1]
        rows = rows_of(ids)
        page = {"next": rows[-1]["pk"] if rows else None, "first": len(rows) > size}
        if len(rows) > size:
            rows = rows[1:]
            page["previous"] = rows[0]["pk"]
        return rows, {k: v for k, v in page.items() if v}
    start = position["at"] or position["after"]
    rows = rows_of(keyset_ids(pairs, dataset, order, start, inclusive=bool(position["at"]), limit=size + 1))
    page = {"first": bool(start)}
    if len(rows) > size:
        rows = rows[:size]
        page["next"] = rows[-1]["pk"]
    if start and rows:
        page["previous"] = rows[0]["pk"]
    return rows, page


def rows_of(ids, text=""):
    """The rows of the pairs `ids`, in that order."""
    rows = {row["pk"]: row for row in page_rows(Pair.objects.filter(pk__in=ids), text, len(ids))}
    return [rows[pk] for pk in ids if pk in rows]


def page_rows(pairs, text="", size=PAGE_SIZE):
    """One page (and one more row) of the list as dicts: ids, scores and an excerpt of each text, cut in SQL
    around the searched `text` where it occurs (responses run to 200,000 characters)."""
    return list(
        pairs.annotate(prompt_excerpt=_excerpt("prompt__query", text), chosen_excerpt=_excerpt("chosen__text", text),
                       rejected_excerpt=_excerpt("rejected__text", text), suspicion_score=F("suspicion__score"))
        .values(*COLUMNS)[:size + 1]
    )


def _excerpt(column, text):
    if not text:
        return Left(column, EXCERPT)
    # From a little before the first match (case folded as the search is), so that the match shows.
    found = StrIndex(Lower(column), Lower(Value(text)))
    return Substr(column, Greatest(Value(1), found - Value(EXCERPT_LEAD)), EXCERPT)


def label_rows(rows):
    labels, statuses = dict(Domain.choices), dict(Pair.Status.choices)
    for row in rows:
        row["domain_label"] = labels.get(row["domain"], row["domain"])
        row["status_label"] = statuses.get(row["status"], row["status"])
        gap = None
        if row["chosen_score"] is not None and row["rejected_score"] is not None:
            gap = row["chosen_score"] - row["rejected_score"]
        row["gap"] = gap
        row["suspicion"] = row.pop("suspicion_score")

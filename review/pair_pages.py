"""One page of a pair list: the rows of the pairs a `PairFilter` selects, after a keyset position, with
the text search walked a page at a time. The pair list page and the API's pair list both read it."""

from dataclasses import dataclass

from django.db.models import F
from django.db.models.functions import Left

from annotation.models import Domain, Pair

from . import search
from .selections import after as pairs_after

# Rows a page shows. Keyset pagination (pk > after), so page 1,000 costs what page 1 does.
PAGE_SIZE = 50
# Characters of each text a row shows (cut in SQL: responses run to 200,000 characters).
EXCERPT = 140

COLUMNS = ("pk", "domain", "status", "status_reason", "chosen_score", "rejected_score", "prompt_excerpt",
           "chosen_excerpt", "rejected_excerpt", "suspicion_score")


@dataclass
class PairPage:
    rows: list
    next_after: int | None  # the keyset position of the next page; None on the last one
    found: object  # search.page's result when the list searches text, else None


def pair_page(form, dataset, after=None, size=PAGE_SIZE):
    """The page of the valid `form`'s pairs of `dataset` that follows pair `after` (None: the first page)."""
    text = form.cleaned_data.get("q")
    pairs = form.pairs(dataset, search_text=False)
    found = None
    if text:
        found = search.page(pairs, dataset, text, after, limit=size + 1)
        pairs = Pair.objects.filter(pk__in=found.ids).order_by("pk")
    elif after:
        pairs = pairs_after(pairs, form.cleaned_data.get("order"), after)
    rows = list(
        pairs.annotate(prompt_excerpt=Left("prompt__query", EXCERPT), chosen_excerpt=Left("chosen__text", EXCERPT),
                       rejected_excerpt=Left("rejected__text", EXCERPT), suspicion_score=F("suspicion__score"))
        .values(*COLUMNS)[:size + 1]
    )
    next_after = None
    if len(rows) > size:
        rows = rows[:size]
        next_after = rows[-1]["pk"]
    elif found and found.walked_to:
        next_after = found.walked_to  # the walk stopped there: "continue" searches on from it
    labels, statuses = dict(Domain.choices), dict(Pair.Status.choices)
    for row in rows:
        row["domain_label"] = labels.get(row["domain"], row["domain"])
        row["status_label"] = statuses.get(row["status"], row["status"])
        gap = None
        if row["chosen_score"] is not None and row["rejected_score"] is not None:
            gap = row["chosen_score"] - row["rejected_score"]
        row["gap"] = gap
        row["suspicion"] = row.pop("suspicion_score")
    return PairPage(rows, next_after, found)

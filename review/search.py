"""Substring search over a dataset's prompts and responses, for the pair list and everything built on
PairFilter (`q=`).

Case-insensitive `ILIKE '%…%'`, which a pg_trgm GIN index (gin_trgm_ops on Prompt.query and
Response.text, created by review/migrations/0003_pair_search.py where the server has pg_trgm) answers
without reading every text. pg_trgm splits text into trigrams of "word" characters; under the C.UTF-8
and zh_CN.UTF-8 ctypes Chinese characters are word characters, so a query of three or more Chinese
characters uses the index too (tested in tests/test_pair_list.py). A query of one or two characters
has no trigram, so the index cannot narrow it: the pairs are walked in id order joined to their texts
instead, which is quick for the common characters such queries usually are and a scan of the dataset
for rare ones (bench/search.py, BENCHMARKS.md "Browse and search"). Without pg_trgm (the embedded
PostgreSQL of `make demo`) the same queries run unindexed.
"""

from django.db.models import BooleanField, F, Func, Q, Value

from annotation.models import Prompt, Response

# Below this many characters a query has no trigram for the index to use.
TRIGRAM = 3


class _ILike(Func):
    arg_joiner = " ILIKE "
    template = "(%(expressions)s)"
    output_field = BooleanField()


def like_pattern(text):
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column, text):
    return Q(_ILike(column, Value(like_pattern(text))))


class StrPos(Func):
    """strpos(haystack, needle) > 0: a literal substring test (used by review/quality_rules.py)."""

    function = "strpos"
    template = "(%(function)s(%(expressions)s) > 0)"
    output_field = BooleanField()


def matching_prompts(dataset, text):
    return Prompt.objects.filter(dataset=dataset).filter(_contains("query", text))


def matching_responses(dataset, text):
    return Response.objects.filter(dataset=dataset).filter(_contains("text", text))


def narrow(pairs, dataset, text):
    """Pairs whose prompt's query or whose chosen or rejected response contains `text`."""
    if len(text) < TRIGRAM:
        # No trigram to look up: walk the pairs in id order, joined to their texts, so that a common
        # character (the usual one- or two-character query) fills a page after a few hundred pairs
        # instead of first finding every text that contains it (1.5 s at 100k pairs, measured).
        pattern = Value(like_pattern(text))
        return pairs.filter(Q(_ILike(F("prompt__query"), pattern)) | Q(_ILike(F("chosen__text"), pattern))
                            | Q(_ILike(F("rejected__text"), pattern)))
    responses = matching_responses(dataset, text).values("pk")
    return pairs.filter(
        Q(prompt_id__in=matching_prompts(dataset, text).values("pk"))
        | Q(chosen_id__in=responses)
        | Q(rejected_id__in=responses)
    )

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from annotation.ingest.report import COUNT_LABELS
from annotation.jobs import failure_summary

register = template.Library()

# Human labels for the counts jobs keep; keys without one are shown as they are.
LABELS = {
    "ok": _("Scored"),
    "parse_error": _("Parse errors"),
    "refused": _("Refusals"),
    "error": _("Errors"),
    "cached": _("From the cache"),
    "requests": _("Requests sent"),
    "input_tokens": _("Input tokens"),
    "output_tokens": _("Output tokens"),
    "cost": _("Cost"),
    "prompts_indexed": _("Prompts indexed for search"),
    "responses_indexed": _("Responses indexed for search"),
    **COUNT_LABELS,
    "errors_not_stored": _("Errors not listed (over the limit)"),
}


# Job kinds and progress units are identifiers; in English the page shows them as they are, so
# these msgids are the identifiers themselves. A kind or unit not listed here is shown as it is.
KINDS = {
    "import": pgettext_lazy("job kind", "import"),
    "score": pgettext_lazy("job kind", "score"),
    "build_pairs": pgettext_lazy("job kind", "build_pairs"),
    "near_duplicates": pgettext_lazy("job kind", "near_duplicates"),
    "train_reward_model": pgettext_lazy("job kind", "train_reward_model"),
    "reward_filter": pgettext_lazy("job kind", "reward_filter"),
    "export": pgettext_lazy("job kind", "export"),
    "search_index": pgettext_lazy("job kind", "search_index"),
}
UNITS = {
    "bytes": pgettext_lazy("job unit", "bytes"),
    "items": pgettext_lazy("job unit", "items"),
    "pairs": pgettext_lazy("job unit", "pairs"),
    "prompts": pgettext_lazy("job unit", "prompts"),
    "requests": pgettext_lazy("job unit", "requests"),
    "steps": pgettext_lazy("job unit", "steps"),
    "texts": pgettext_lazy("job unit", "texts"),
}


@register.filter
def job_kind(kind):
    return KINDS.get(kind, kind)


@register.filter
def job_unit(unit):
    return UNITS.get(unit, unit)


@register.filter
def job_failures(job):
    """The job's failed items in words ("3 of 100 rows rejected"); empty when none failed."""
    return failure_summary(job)


@register.filter
def count_label(key):
    return LABELS.get(key, key)


@register.filter
def count_value(value, key):
    if key == "cost":
        return f"{value:,.4f}"
    return intcomma(value)


@register.filter
def in_label_order(pairs):
    """(key, value) pairs with the known counts first, in the order of LABELS."""
    order = {key: i for i, key in enumerate(LABELS)}
    return sorted(pairs, key=lambda kv: order.get(kv[0], len(order)))

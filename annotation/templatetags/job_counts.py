from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import pgettext_lazy

from annotation.jobs import failure_summary

register = template.Library()

# Progress units are identifiers; in English the page shows them as they are, so these msgids are the
# identifiers themselves. A unit not listed here is shown as it is.
UNITS = {
    "bytes": pgettext_lazy("job unit", "bytes"),
    "dashboards": pgettext_lazy("job unit", "dashboards"),
    "items": pgettext_lazy("job unit", "items"),
    "pairs": pgettext_lazy("job unit", "pairs"),
    "prompts": pgettext_lazy("job unit", "prompts"),
    "requests": pgettext_lazy("job unit", "requests"),
    "rules": pgettext_lazy("job unit", "rules"),
    "steps": pgettext_lazy("job unit", "steps"),
    "texts": pgettext_lazy("job unit", "texts"),
}


@register.filter
def job_unit(unit):
    return UNITS.get(unit, unit)


@register.filter
def job_failures(job):
    """The job's failed items in words ("3 of 100 rows rejected"); empty when none failed."""
    return failure_summary(job)


@register.filter
def labelled_counts(job):
    """(key, label, value) of the job's plain-number counts: those its kind labels first, in the order it
    declares them, then any other as it is (nested counts have tables of their own)."""
    labels = job.kind_info.count_labels()
    order = {key: i for i, key in enumerate(labels)}
    counts = sorted(job.scalar_counts(), key=lambda kv: order.get(kv[0], len(order)))
    return [(key, labels.get(key, key), value) for key, value in counts]


@register.filter
def domain_label(code):
    """A domain's name (数学, Math) for its code; an unknown code as it is."""
    from annotation.models import Domain

    return dict(Domain.choices).get(code, code)


@register.filter
def count_value(value, key):
    if key == "cost":
        return f"{value:,.4f}"
    return intcomma(value)

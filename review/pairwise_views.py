"""Pairwise re-judging from the review side: the "pairwise judge disagrees" list, and the pair list's form
that asks a judge about the pairs of the current list (annotation/rejudging.py runs the job)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from annotation.models import Judge, PairwiseVerdict, Role
from annotation.rejudging import DEFAULT_LIMIT, start_rejudge

from .access import get_dataset_for
from .selections import select_pairs, selection


# Read live: the verdicts are few (the pairs someone chose to re-judge) and indexed by (dataset, outcome, pair).
@selection("pairwise-disagrees", gettext_lazy("Pairwise judge disagrees"), "disagreement",
           gettext_lazy("A judge asked in both orders which response is better preferred the rejected one both "
                        "times (pairwise re-judging)."))
def pairwise_disagrees(pairs, dataset, settings):
    against = PairwiseVerdict.objects.filter(dataset=dataset, outcome=PairwiseVerdict.Outcome.REJECTED)
    return pairs.filter(pk__in=against.values("pair_id"))


def askable_judges():
    """Judges with an API: imported scores' judges cannot be asked."""
    return Judge.objects.filter(is_active=True).exclude(base_url="").exclude(model="").order_by("name")


class RejudgeForm(forms.Form):
    judge = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Judge"))
    limit = forms.IntegerField(min_value=1, initial=DEFAULT_LIMIT, label=gettext_lazy("At most this many pairs"))
    # The pair list's query string: the list whose pairs are asked about.
    selection = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judge"].queryset = askable_judges()


@login_required
@require_POST
def rejudge_start(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = RejudgeForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[name].label}: {' '.join(e)}" for name, e in form.errors.items())
        messages.error(request, _("Pairwise re-judging was not started: %(errors)s") % {"errors": errors})
        return redirect(_list_url(dataset, form.data.get("selection", "")))
    query = form.cleaned_data["selection"]
    pairs, list_form = select_pairs(dataset, QueryDict(query))
    if pairs is None:
        messages.error(request, _("Pairwise re-judging was not started: the list's filter is invalid."))
        return redirect(_list_url(dataset, query))
    try:
        job = start_rejudge(dataset, form.cleaned_data["judge"], pairs, limit=form.cleaned_data["limit"],
                            described=query, user=request.user)
    except ValueError as exc:
        messages.error(request, _("Pairwise re-judging was not started: %(reason)s") % {"reason": exc})
        return redirect(_list_url(dataset, query))
    return redirect("job-detail", job.pk)


def _list_url(dataset, query):
    url = reverse("pair-list", args=[dataset.pk])
    return f"{url}?{query}" if query else url

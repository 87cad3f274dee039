"""Pages for the near-duplicate flags: the groups of a dataset, its benchmark matches, and the
admin's button that runs the check again."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Window
from django.db.models.functions import RowNumber
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from . import jobs
from .access import get_dataset_for, visible_datasets
from .ingest.near_duplicates import DEFAULT_THRESHOLD, KIND, contamination_for, params_for
from .models import NearDuplicateGroup, NearDuplicateMember, Role

# 25 groups a page, 20 members shown a group: a page stays under ~100 KB however large a group is.
GROUPS_PER_PAGE = 25
MATCHES_PER_PAGE = 100


class NearDuplicateForm(forms.Form):
    threshold = forms.FloatField(
        min_value=0.3, max_value=1.0, initial=DEFAULT_THRESHOLD, label=_("Similarity threshold"),
        help_text=_("Jaccard similarity of character 3-grams (0.3 to 1), traditional characters read as "
                    "simplified. A short prompt found whole in another with a few words added around it is "
                    "grouped whatever its similarity."),
    )


@login_required
@require_GET
def group_list(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    groups = NearDuplicateGroup.objects.filter(dataset=dataset)
    page = Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    # Only the members shown: a group of a copied prompt can have thousands.
    shown = Window(RowNumber(), partition_by="group_id", order_by=["-similarity", "prompt_id"])
    members = (
        NearDuplicateMember.objects.filter(group__in=list(page.object_list)).annotate(n=shown).filter(n__lte=20)
        .select_related("prompt").order_by("group_id", "-similarity", "prompt_id")
    )
    by_group = {}
    for m in members:
        by_group.setdefault(m.group_id, []).append(m)
    for group in page.object_list:
        group.shown = by_group.get(group.pk, [])
    ctx = {"dataset": dataset, "page": page, "form": _form_for(request, dataset)}
    return render(request, "annotation/near_duplicates.html", ctx)


@login_required
@require_GET
def contamination_list(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    matches = contamination_for(dataset).select_related("prompt", "benchmark_prompt__dataset", "dataset")
    page = Paginator(matches, MATCHES_PER_PAGE).get_page(request.GET.get("page"))
    # The other side of a match is shown only to members of its dataset.
    visible = set(visible_datasets(request.user).values_list("pk", flat=True))
    ctx = {"dataset": dataset, "page": page, "visible": visible}
    return render(request, "annotation/contamination.html", ctx)


@login_required
@require_POST
def run_check(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = NearDuplicateForm(request.POST)
    if not form.is_valid():
        groups = NearDuplicateGroup.objects.filter(dataset=dataset)
        page = Paginator(groups, GROUPS_PER_PAGE).get_page(1)
        return render(request, "annotation/near_duplicates.html",
                      {"dataset": dataset, "page": page, "form": form}, status=400)
    job = jobs.create_job(KIND, dataset=dataset, user=request.user,
                          params=params_for(threshold=form.cleaned_data["threshold"]))
    return redirect("job-detail", job.pk)


def _form_for(request, dataset):
    return NearDuplicateForm() if dataset.allows(request.user, Role.ADMIN) else None

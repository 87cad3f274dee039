"""Admin actions that start scoring jobs for selected datasets, prompts, responses or pairs.

Only an admin of each dataset (or a superuser) may start one; the form is the dataset page's."""

from collections import defaultdict

from django.contrib import messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .forms import ScoreForm
from .judging import start_scoring
from .models import Dataset, Role


def _selection(queryset):
    """{dataset id: extra selection options} for the selected objects of any of the four models."""
    model = queryset.model._meta.model_name
    if model == "dataset":
        return {pk: {} for pk in queryset.values_list("pk", flat=True)}
    option = {"prompt": "prompt_ids", "response": "response_ids", "pair": "pair_ids"}[model]
    grouped = defaultdict(list)
    for pk, dataset_id in queryset.values_list("pk", "dataset_id").iterator(chunk_size=5000):
        grouped[dataset_id].append(pk)
    return {dataset_id: {option: ids} for dataset_id, ids in grouped.items()}


def score_selected(modeladmin, request, queryset):
    form = ScoreForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for dataset_id, extra in _selection(queryset).items():
            dataset = Dataset.objects.get(pk=dataset_id)
            if not dataset.allows(request.user, Role.ADMIN):
                messages.error(request, _("You are not an admin of %(name)s; nothing was scored there.")
                               % {"name": dataset.name})
                continue
            try:
                job = start_scoring(dataset, user=request.user, **form.options(), **extra)
            except ValueError as exc:
                messages.error(request, f"{dataset.name}: {exc}")
                continue
            messages.success(request, format_html(
                _("Scoring job {} started for {}."), format_html('<a href="{}">#{}</a>',
                                                             reverse("job-detail", args=[job.pk]), job.pk),
                dataset.name))
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Score with LLM judges"),
        "form": form,
        "queryset": queryset,
        "count": queryset.count(),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": request.POST.get("action", "score_selected"),
    }
    return TemplateResponse(request, "admin/annotation/score_action.html", context)


score_selected.short_description = gettext_lazy("Score with LLM judges…")

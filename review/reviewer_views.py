"""Per-reviewer statistics of a dataset (review/reviewer_stats.py), for its admins."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.models import Role

from .access import get_dataset_for
from .models import Review
from .reviewer_stats import SITTING_GAP, reviewer_stats


@login_required
@require_GET
def reviewer_statistics(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    return render(request, "review/reviewer_stats.html", {
        "dataset": dataset, "rows": reviewer_stats(dataset), "verdicts": Review.Verdict.choices,
        "sitting_minutes": int(SITTING_GAP.total_seconds() // 60),
    })

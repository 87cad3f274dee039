"""Audit pages: draw a sample (dataset admins), its report (any member), and two audits side by side."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Domain, Role

from . import audits
from .access import get_audit_for, get_dataset_for, visible_datasets
from .forms import AuditForm
from .models import Audit


def _list_context(request, dataset, form=None):
    return {
        "dataset": dataset,
        "audits": Audit.objects.filter(dataset=dataset).select_related("created_by"),
        "comparable": Audit.objects.filter(dataset__in=visible_datasets(request.user)).select_related("dataset"),
        "form": (form or AuditForm()) if dataset.allows(request.user, Role.ADMIN) else None,
    }


@login_required
@require_GET
def audit_list(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    return render(request, "review/audit_list.html", _list_context(request, dataset))


@login_required
@require_POST
def audit_create(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = AuditForm(request.POST)
    if form.is_valid():
        data, query = form.cleaned_data, form.query()
        try:
            small = audits.small_strata(dataset, query, data["n_per_domain"])
            if small and not data["whole_strata"]:
                labels = dict(Domain.choices)
                form.add_error("n_per_domain", _(
                    "Fewer than %(n)s pairs in %(strata)s: the sample would be all of them there. Ask for fewer pairs "
                    "per domain, or tick the box below to take the whole of those domains.") % {
                    "n": data["n_per_domain"],
                    "strata": ", ".join(f"{labels.get(d, d)} ({count})" for d, count in small)})
            else:
                audit = audits.draw(dataset, n_per_domain=data["n_per_domain"],
                                    reviews_per_pair=data["reviews_per_pair"], seed=data["seed"], query=query,
                                    label=data["label"], user=request.user)
                return redirect("audit-detail", audit.pk)
        except audits.AuditError as exc:
            form.add_error(None, _("No sample drawn: %(reason)s") % {"reason": exc})
    return render(request, "review/audit_list.html", _list_context(request, dataset, form), status=400)


@login_required
@require_GET
def audit_detail(request, pk):
    audit = get_audit_for(request, pk, Role.VIEWER)
    return render(request, "review/audit_detail.html", {
        "audit": audit, "dataset": audit.dataset, "rows": audits.report(audit),
        "can_review": audit.dataset.allows(request.user, Role.REVIEWER),
    })


@login_required
@require_GET
def audit_compare(request):
    first, second = request.GET.get("a", ""), request.GET.get("b", "")
    if not (first.isdigit() and second.isdigit()):
        raise Http404("Choose two audits.")
    a, b = get_audit_for(request, int(first), Role.VIEWER), get_audit_for(request, int(second), Role.VIEWER)
    return render(request, "review/audit_compare.html", {"first": a, "second": b, "rows": audits.compare(a, b)})

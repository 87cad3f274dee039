import csv
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from review.access import get_dataset_for, get_job_for, visible_datasets

from . import jobs
from .forms import ImportForm
from .ingest.importer import import_params
from .models import Job, Role


@login_required
@require_POST
def import_upload(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "annotation/import_page.html", {"dataset": dataset, "form": form}, status=400)
    upload = form.cleaned_data["file"]
    path = _store_upload(upload)
    params = import_params(
        path, fmt=form.cleaned_data["format"], domain=form.cleaned_data["domain"] or None, original_name=upload.name
    )
    job = jobs.create_job("import", dataset=dataset, user=request.user, params=params)
    return redirect("job-detail", job.pk)


def _store_upload(upload):
    """Move the upload (already streamed to a temporary file past 2.5 MB) under MEDIA_ROOT/imports."""
    directory = Path(settings.MEDIA_ROOT) / "imports" / uuid.uuid4().hex
    directory.mkdir(parents=True)
    path = directory / Path(upload.name).name
    if hasattr(upload, "temporary_file_path"):
        shutil.move(upload.temporary_file_path(), path)
    else:
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return path


@login_required
@require_GET
def job_list(request):
    datasets = visible_datasets(request.user)
    visible = Q(dataset__in=datasets) | (Q(dataset__isnull=True) if request.user.is_superuser else Q(pk__in=[]))
    job_rows = Job.objects.filter(visible).select_related("dataset", "created_by")[:200]
    return render(request, "annotation/job_list.html", {"jobs": job_rows})


@login_required
@require_GET
def job_detail(request, pk):
    job = get_job_for(request, pk, Role.VIEWER)
    ctx = {
        "job": job,
        "can_cancel": job.dataset is None or job.dataset.allows(request.user, Role.ADMIN),
        "errors": job.errors.all()[:100],
    }
    if request.htmx:
        response = render(request, "annotation/job_detail.html#progress", ctx)
        if job.is_finished():
            # 286 stops the polling; the page reloads once to show the final state everywhere.
            stop = HttpResponseStopPolling(response.content)
            stop["HX-Refresh"] = "true"
            return stop
        return response
    return render(request, "annotation/job_detail.html", ctx)


@login_required
@require_POST
def job_cancel(request, pk):
    job = get_job_for(request, pk, Role.ADMIN)
    jobs.request_cancel(job)
    return redirect("job-detail", job.pk)


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def job_errors_csv(request, pk):
    job = get_job_for(request, pk, Role.VIEWER)
    writer = csv.writer(_Echo())
    rows = job.errors.order_by("line", "pk").values_list("line", "reason", "excerpt").iterator(chunk_size=2000)

    def stream():
        yield "\ufeff"  # so Excel in a Chinese locale reads UTF-8
        yield writer.writerow(["line", "reason", "excerpt"])
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-rejected-rows.csv"'
    return response

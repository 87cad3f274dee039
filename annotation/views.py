from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from . import jobs, pairing
from .access import get_dataset_for, get_job_for, visible_datasets
from .csv_cells import CsvCells
from .forms import BuildPairsForm, ImportForm, JobFilter, ScoreForm
from .ingest.importer import hub_import_params, import_params
from .ingest.report import import_report
from .judgement_export import judgement_lines
from .judging import start_scoring
from .models import Job, PairBuildRun, Role
from .uploads import store_upload


@login_required
@require_POST
def import_upload(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    # The upload handler sets upload_too_large when it stopped the upload (and deleted its file).
    form = ImportForm(request.POST, request.FILES, upload_too_large=getattr(request, "upload_too_large", False))
    if not form.is_valid():
        return render(request, "annotation/import_page.html", {"dataset": dataset, "form": form}, status=400)
    data = form.cleaned_data
    options = {"fmt": data["format"], "domain": data["domain"] or None, "columns": data["columns"]}
    if data["hub"]:
        params = hub_import_params(data["hub"], split=data["split"] or "train", limit=data["limit"], **options)
    else:
        upload = data["file"]
        params = import_params(store_upload(upload), original_name=upload.name, **options)
    job = jobs.create_job("import", dataset=dataset, user=request.user, params=params)
    return redirect("job-detail", job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def score_start(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = ScoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = start_scoring(dataset, user=request.user, **form.options())
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("job-detail", job.pk)
    status = 400 if form.errors else 200
    return render(request, "annotation/score_page.html", {"dataset": dataset, "form": form}, status=status)


@login_required
@require_GET
def job_list(request):
    datasets = visible_datasets(request.user)
    visible = Q(dataset__in=datasets) | (Q(dataset__isnull=True) if request.user.is_superuser else Q(pk__in=[]))
    form = JobFilter(request.GET, datasets=datasets)
    job_rows = Job.objects.filter(visible)
    if form.is_valid():
        job_rows = form.narrow(job_rows)
    job_rows = job_rows.select_related("dataset", "created_by")[:200]
    return render(request, "annotation/job_list.html", {"jobs": job_rows, "form": form},
                  status=200 if form.is_valid() else 400)


@login_required
@require_GET
def job_detail(request, pk):
    job = get_job_for(request, pk, Role.VIEWER)
    ctx = {
        "job": job,
        "can_cancel": job.dataset is None or job.dataset.allows(request.user, Role.ADMIN),
        "errors": job.errors.all()[:100],
        "report": import_report(job) if job.kind == "import" else None,
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
    jobs.request_cancel(job, by=f"{request.user.get_username()} (job page)")
    return redirect("job-detail", job.pk)


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def job_errors_csv(request, pk):
    job = get_job_for(request, pk, Role.VIEWER)
    writer = CsvCells(_Echo())  # excerpts are the rejected input: hostile, and read in spreadsheets
    rows = job.errors.order_by("line", "pk").values_list("line", "reason", "excerpt").iterator(chunk_size=2000)
    note = job.unstored_errors_note()

    def stream():
        yield "\ufeff"  # so Excel in a Chinese locale reads UTF-8
        yield writer.writerow(["line", "reason", "excerpt"])
        for row in rows:
            yield writer.writerow(row)
        if note:
            yield writer.writerow(["", note, ""])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-rejected-rows.csv"'
    return response


@login_required
@require_POST
def build_pairs_start(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = BuildPairsForm.for_dataset(dataset, request.POST)
    if not form.is_valid():
        return _build_runs_page(request, dataset, form, status=400)
    try:
        job = pairing.start_build(dataset, form.cleaned_data["params"], user=request.user)
    except pairing.BuildAlreadyRunning as exc:
        messages.error(request, _("A pair build of this dataset is already under way."))
        return redirect("job-detail", exc.job.pk)
    return redirect("job-detail", job.pk)


@login_required
@require_GET
def build_runs(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    form = BuildPairsForm.for_dataset(dataset) if dataset.allows(request.user, Role.ADMIN) else None
    return _build_runs_page(request, dataset, form)


def _build_runs_page(request, dataset, form, status=200):
    runs = PairBuildRun.objects.filter(dataset=dataset).select_related("job")[:200]
    ctx = {"dataset": dataset, "runs": runs, "build_form": form}
    return render(request, "annotation/build_runs.html", ctx, status=status)


@login_required
@require_GET
def judgements_download(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    response = StreamingHttpResponse(judgement_lines(dataset), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="dataset-{dataset.pk}-judgements.jsonl"'
    return response

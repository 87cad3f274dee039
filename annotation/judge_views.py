"""The judges and rubrics in the app: add, change and try a judge; edit a domain's rubric as a new version.

Who may do what is annotation/access.py's `require_judges_access`: staff change, dataset admins look
and try a judge on five responses of a dataset they administer."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .access import administered_datasets, can_change_judges, require_judges_access
from .judge_client import JudgeError
from .judge_forms import JudgeForm, PreviewForm, RubricForm
from .judge_preview import PREVIEW_RESPONSES, PREVIEW_TIMEOUT_S, PREVIEW_TOTAL_S, key_problem, preview_responses, run_preview
from .models import Domain, Judge, Rubric


@login_required
@require_GET
def judge_list(request):
    require_judges_access(request.user)
    judges = [{"judge": j, "key_problem": key_problem(j)} for j in Judge.objects.all()]
    return render(request, "annotation/judge_list.html",
                  {"judges": judges, "can_change": can_change_judges(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def judge_create(request):
    require_judges_access(request.user, change=True)
    form = JudgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        judge = form.save()
        messages.success(request, _("Judge %(name)s added. Try it on five responses below.") % {"name": judge.name})
        return redirect("judge-edit", judge.pk)
    return render(request, "annotation/judge_form.html", {"form": form, "judge": None},
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def judge_edit(request, pk):
    require_judges_access(request.user, change=request.method == "POST")
    judge = get_object_or_404(Judge, pk=pk)
    form = JudgeForm(request.POST or None, instance=judge)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Judge %(name)s saved.") % {"name": judge.name})
        return redirect("judge-edit", judge.pk)
    return render(request, "annotation/judge_form.html", _judge_context(request, judge, form),
                  status=400 if form.errors else 200)


@login_required
@require_POST
def judge_preview(request, pk):
    """Ask the judge about the first five responses of a dataset the user administers, now, and show
    its raw answers beside the scores the parser reads in them. Nothing is stored."""
    require_judges_access(request.user)
    judge = get_object_or_404(Judge, pk=pk)
    preview_form = PreviewForm(request.POST, datasets=administered_datasets(request.user))
    context = {"preview_form": preview_form}
    if preview_form.is_valid():
        responses = preview_responses(preview_form.cleaned_data["dataset"], preview_form.cleaned_data["domain"])
        context["preview_ran"] = True
        problem = key_problem(judge)
        if problem:
            context["preview_error"] = _("Nothing was sent: %(problem)s.") % {"problem": problem}
        elif not responses:
            context["preview_error"] = _("This dataset has no responses in that domain.")
        else:
            try:
                context["preview_rows"] = run_preview(judge, responses)
            except JudgeError as exc:
                context["preview_error"] = str(exc)
    context = _judge_context(request, judge, JudgeForm(instance=judge), **context)
    if request.htmx:  # htmx swaps only 2xx answers: the fragment with its errors is the answer
        return render(request, "annotation/_judge_preview.html", context)
    return render(request, "annotation/judge_form.html", context, status=400 if preview_form.errors else 200)


def _judge_context(request, judge, form, **extra):
    can_change = can_change_judges(request.user)
    datasets = administered_datasets(request.user)
    extra.setdefault("preview_form", PreviewForm(datasets=datasets, initial={"dataset": datasets.first()}))
    return {"judge": judge, "form": form if can_change else None, "can_change": can_change,
            "key_problem": key_problem(judge), "preview_limit": PREVIEW_RESPONSES,
            "preview_timeout": PREVIEW_TIMEOUT_S, "preview_total": PREVIEW_TOTAL_S, **extra}


@login_required
@require_GET
def rubric_list(request):
    require_judges_access(request.user)
    latest = {}
    for rubric in Rubric.objects.select_related("created_by"):  # ordered by domain, newest version first
        latest.setdefault(rubric.domain, rubric)
    rows = [{"domain": d, "label": label, "rubric": latest.get(d)} for d, label in Domain.choices]
    return render(request, "annotation/rubric_list.html", {"rows": rows, "can_change": can_change_judges(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def rubric_edit(request, domain):
    require_judges_access(request.user, change=request.method == "POST")
    if domain not in Domain.values:
        raise Http404("No such domain.")
    history = list(Rubric.objects.filter(domain=domain).select_related("created_by"))
    current = history[0].text if history else ""
    form = RubricForm(request.POST or None, current=current, initial={"text": current})
    if request.method == "POST" and form.is_valid():
        rubric = Rubric.add_version(domain, form.cleaned_data["text"], request.user)
        messages.success(request, _("Saved as version %(new)s of the %(domain)s rubric; the earlier versions are "
                                    "kept for the judgements made with them.")
                         % {"new": rubric.version, "domain": Domain(domain).label})
        return redirect("rubric-edit", domain)
    return render(request, "annotation/rubric_edit.html",
                  {"domain": domain, "label": Domain(domain).label, "history": history, "form": form,
                   "can_change": can_change_judges(request.user)}, status=400 if form.errors else 200)

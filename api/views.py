"""The REST API. Each view checks access with the helpers the pages use (annotation/access.py,
review/access.py), validates input with the pages' forms and calls the workflow function the page calls:
no rule lives here. Work that takes time answers 202 with the job; `GET /api/v1/jobs/{id}/` follows it."""

from django.db import transaction
from django.db.models import Q
from django.http import FileResponse, Http404, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response as ApiResponse

from annotation import jobs, pairing
from annotation.access import MembershipKept, remove_membership
from annotation.forms import BuildPairsForm, ImportForm, ScoreForm
from annotation.ingest.importer import hub_import_params, import_params
from annotation.judging import start_scoring
from annotation.models import Job, Judgement, Membership, Pair, PairwiseVerdict, Response, RewardScore, Role
from annotation.rejudging import start_rejudge
from annotation.reward.filtering import MODES, filter_params
from annotation.reward.forms import ThresholdForm, TrainRewardForm
from annotation.reward.training import train_params
from annotation.uploads import store_upload
from review import decisions, exports
from review import queue as queues
from review.access import (
    get_dataset_for,
    get_export_for,
    get_job_for,
    get_reward_model_for,
    visible_datasets,
    visible_reward_models,
)
from review.forms import DatasetForm, DecisionForm, ExportForm, MemberForm, VerdictForm
from review.models import DecisionBatch, Review
from review.pair_pages import pair_page
from review.pairwise_views import RejudgeForm
from review.quality_rules import flags_of
from review.selections import PairFilter, select_pairs

from . import serializers as out
from .errors import Conflict, FormInvalid
from .form_schema import form_serializer

# At most this many rows per page of pairs, reviews and jobs (`limit`).
MAX_LIMIT = 500

ERRORS = {code: out.ErrorSerializer for code in (400, 401, 403, 404, 429)}
STARTED = {202: out.JobSerializer, **ERRORS}


def _valid(form):
    if not form.is_valid():
        raise FormInvalid(form)
    return form.cleaned_data


def _started(request, job):
    response = ApiResponse(out.JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
    response["Location"] = reverse("api-job", args=[job.pk])
    return response


def _limit(request, default=100):
    raw = request.query_params.get("limit", "")
    if raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise FormInvalid.of("limit", _("limit must be a whole number from 1 to %(max)s.") % {"max": MAX_LIMIT})
    return int(raw)


def _after(request):
    raw = request.query_params.get("after", "")
    if raw == "":
        return None
    if not raw.isdigit():
        raise FormInvalid.of("after", _("after must be a pair id (a whole number)."))
    return int(raw) or None


def _params(request, *names):
    """A QueryDict of the request's query string without `names` (the pair filters' input)."""
    params = request.query_params.copy()
    for name in names:
        params.pop(name, None)
    return params


def _data(request):
    """The request body for a Django form: a QueryDict for form posts, the JSON object otherwise."""
    data = request.data
    if isinstance(data, QueryDict) or isinstance(data, dict):
        return data
    raise FormInvalid.of("body", _("The body must be a JSON object."))


def _form(make_form, request, *args, **kwargs):
    """`make_form(data, *args)` bound to the request's body, where a field the call leaves out takes the
    initial value the page's form shows (a page always posts them)."""
    data = _data(request)
    if isinstance(data, QueryDict):  # multipart: DRF puts the uploads in it too, which cannot be deep-copied
        merged = QueryDict(mutable=True)
        for name in data:
            merged.setlist(name, data.getlist(name))
    else:
        merged = dict(data)
    for name, field in make_form(None, *args, **kwargs).fields.items():
        initial = field.initial() if callable(field.initial) else field.initial
        if name in merged or initial is None:
            continue
        if isinstance(merged, QueryDict):
            merged.setlist(name, [str(v) for v in initial] if isinstance(initial, (list, tuple)) else [str(initial)])
        else:
            merged[name] = initial
    return make_form(merged, *args, **kwargs)


@csrf_exempt  # no session is used; Django's CSRF page would answer an API client in HTML
def not_found(request, *args, **kwargs):
    return JsonResponse({"detail": _("No such API address.")}, status=404)


# Datasets and members.

DatasetInput = form_serializer("DatasetInput", DatasetForm)
MemberInput = form_serializer("MemberInput", MemberForm)


@extend_schema(methods=["GET"], responses={200: out.DatasetSerializer(many=True), **ERRORS},
               summary="Datasets you are a member of (every one for superusers)")
@extend_schema(methods=["POST"], request=DatasetInput, responses={201: out.DatasetSerializer, **ERRORS},
               summary="Create a dataset (staff users); you become its admin")
@api_view(["GET", "POST"])
def datasets(request):
    if request.method == "GET":
        rows = visible_datasets(request.user).order_by("pk")
        return ApiResponse(out.DatasetSerializer(rows, many=True, context={"request": request}).data)
    if not request.user.is_staff:
        raise PermissionDenied(_("Only staff users create datasets."))
    form = DatasetForm(_data(request))
    _valid(form)
    with transaction.atomic():
        dataset = form.save(commit=False)
        dataset.created_by = request.user
        dataset.save()
        Membership.objects.create(dataset=dataset, user=request.user, role=Role.ADMIN)
    return ApiResponse(out.DatasetSerializer(dataset, context={"request": request}).data, status=201)


@extend_schema(responses={200: out.DatasetCountsSerializer, **ERRORS},
               summary="A dataset, with its prompts, responses and pairs by domain and pairs by status")
@api_view(["GET"])
def dataset(request, pk):
    found = get_dataset_for(request, pk, Role.VIEWER)
    return ApiResponse(out.DatasetCountsSerializer(found, context={"request": request}).data)


@extend_schema(methods=["GET"], responses={200: out.MemberSerializer(many=True), **ERRORS},
               summary="The dataset's members and roles (dataset admins)")
@extend_schema(methods=["POST"], request=MemberInput, responses={200: out.MemberSerializer, **ERRORS},
               summary="Add a member or change a member's role (dataset admins)")
@api_view(["GET", "POST"])
def members(request, pk):
    found = get_dataset_for(request, pk, Role.ADMIN)
    if request.method == "GET":
        rows = found.memberships.select_related("user").order_by("user__username")
        return ApiResponse(out.MemberSerializer(rows, many=True).data)
    data = _valid(MemberForm(_data(request)))
    membership, _created = Membership.objects.update_or_create(dataset=found, user=data["username"],
                                                               defaults={"role": data["role"]})
    return ApiResponse(out.MemberSerializer(membership).data)


@extend_schema(responses={204: None, 409: out.ErrorSerializer, **ERRORS},
               summary="Remove a member (dataset admins); 409 for the dataset's last admin")
@api_view(["DELETE"])
def member(request, pk, username):
    found = get_dataset_for(request, pk, Role.ADMIN)
    membership = get_object_or_404(Membership, dataset=found, user__username=username)
    try:
        remove_membership(membership)
    except MembershipKept as refused:
        raise Conflict(str(refused))
    return ApiResponse(status=204)


# Import.

ImportInput = form_serializer("ImportInput", ImportForm)


@extend_schema(request={"multipart/form-data": ImportInput, "application/json": ImportInput}, responses=STARTED,
               summary="Import a file (multipart upload) or a Hugging Face dataset (`hub`) → an import job "
                       "(dataset admins)")
@api_view(["POST"])
def imports(request, pk):
    found = get_dataset_for(request, pk, Role.ADMIN)
    form = _form(ImportForm, request, request.FILES,
                 upload_too_large=getattr(request._request, "upload_too_large", False))
    data = _valid(form)
    options = {"fmt": data["format"], "domain": data["domain"] or None, "columns": data["columns"]}
    if data["hub"]:
        params = hub_import_params(data["hub"], split=data["split"] or "train", limit=data["limit"], **options)
    else:
        params = import_params(store_upload(data["file"]), original_name=data["file"].name, **options)
    return _started(request, jobs.create_job("import", dataset=found, user=request.user, params=params))


# Jobs.


@extend_schema(parameters=[OpenApiParameter("dataset", int, description="Only this dataset's jobs"),
                           OpenApiParameter("kind", str), OpenApiParameter("status", str, enum=Job.Status.values),
                           OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT}, default 100")],
               responses={200: out.JobSerializer(many=True), **ERRORS},
               summary="Jobs of the datasets you see, newest first")
@api_view(["GET"])
def job_list(request):
    user = request.user
    visible = Q(dataset__in=visible_datasets(user)) | (Q(dataset__isnull=True) if user.is_superuser else Q(pk__in=[]))
    rows = Job.objects.filter(visible)
    for name in ("dataset", "kind", "status"):
        value = request.query_params.get(name, "")
        if name == "dataset" and value and not value.isdigit():
            raise FormInvalid.of("dataset", _("dataset must be a dataset id."))
        if value:
            rows = rows.filter(**{name: value})
    rows = rows.select_related("dataset")[:_limit(request)]
    return ApiResponse(out.JobSerializer(rows, many=True, context={"request": request}).data)


@extend_schema(responses={200: out.JobSerializer, **ERRORS}, summary="A job: status, progress, counts, ETA")
@api_view(["GET"])
def job(request, pk):
    found = get_job_for(request, pk, Role.VIEWER)
    return ApiResponse(out.JobSerializer(found, context={"request": request}).data)


@extend_schema(request=None, responses={200: out.JobSerializer, **ERRORS},
               summary="Ask a job to stop (dataset admins); it stops at its next chunk")
@api_view(["POST"])
def job_cancel(request, pk):
    found = get_job_for(request, pk, Role.ADMIN)
    jobs.request_cancel(found)
    found.refresh_from_db()
    return ApiResponse(out.JobSerializer(found, context={"request": request}).data)


# Pairs.

PAIR_FILTERS = [
    OpenApiParameter(name, OpenApiTypes.STR, many=name in ("domain", "status", "verdict"),
                     description=str(field.help_text or field.label))
    for name, field in PairFilter().fields.items()
] + [OpenApiParameter("after", int, description="The previous page's `next_after` (keyset pagination)"),
     OpenApiParameter("limit", int, description=f"Rows per page, 1 to {MAX_LIMIT}, default 100")]


@extend_schema(operation_id="pairs_list", parameters=PAIR_FILTERS, responses={200: out.PairPageSerializer, **ERRORS},
               summary="Pairs, with every filter of the pair list page (its URL parameters, including "
                       "`view=<name>` and that view's settings), keyset-paginated")
@api_view(["GET"])
def pair_list(request, pk):
    found = get_dataset_for(request, pk, Role.VIEWER)
    after, limit = _after(request), _limit(request)
    form = PairFilter(_params(request, "after", "limit"))
    _valid(form)
    page = pair_page(form, found, after, size=limit)
    following = None
    if page.next_after is not None:
        query = request.query_params.copy()
        query["after"] = page.next_after
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return ApiResponse({"results": out.PairRowSerializer(page.rows, many=True).data, "next_after": page.next_after,
                        "next": following})


@extend_schema(operation_id="pair_retrieve", responses={200: out.PairDetailSerializer, **ERRORS},
               summary="One pair with its prompt, both responses, their judgements and rewards, the rules that "
                       "flag it, its reviews and pairwise verdicts")
@api_view(["GET"])
def pair_detail(request, pk, pair_pk):
    found = get_dataset_for(request, pk, Role.VIEWER)
    pair = get_object_or_404(Pair.objects.select_related("prompt", "dataset"), pk=pair_pk, dataset=found)
    return ApiResponse(_pair_body(pair))


def _pair_body(pair):
    judgements = Judgement.objects.select_related("judge", "rubric").order_by("judge__name", "-created_at", "-pk")
    rewards = RewardScore.objects.select_related("reward_model").order_by("reward_model__name",
                                                                           "-reward_model__version")
    sides = {}
    for response in Response.objects.filter(pk__in=[pair.chosen_id, pair.rejected_id]):
        sides[response.pk] = {
            "id": response.pk, "model": response.model, "text": response.text,
            "judgements": out.JudgementSerializer(judgements.filter(response=response), many=True).data,
            "rewards": out.RewardSerializer(rewards.filter(response=response), many=True).data,
        }
    suspicion = getattr(getattr(pair, "suspicion", None), "score", None)
    reviews = Review.objects.filter(pair=pair).select_related("reviewer").order_by("-updated_at")
    verdicts = PairwiseVerdict.objects.filter(pair=pair).select_related("judge").order_by("judge__name")
    return {
        "id": pair.pk, "dataset": pair.dataset_id, "domain": pair.domain, "status": pair.status,
        "status_reason": pair.status_reason, "origin": pair.origin, "chosen_score": pair.chosen_score,
        "rejected_score": pair.rejected_score, "messages": pair.prompt.messages,
        "chosen": sides[pair.chosen_id], "rejected": sides[pair.rejected_id],
        "rules": [rule.name for rule in flags_of(pair)], "suspicion": suspicion,
        "reviews": out.ReviewSerializer(reviews, many=True).data,
        "pairwise_verdicts": out.PairwiseVerdictSerializer(verdicts, many=True).data,
    }


# Reviews.

ReviewInput = form_serializer("ReviewInput", VerdictForm)


def _queue(request, found, query):
    # As on the queue page: admins may open a queue unblinded (blind=0); reviewers review blind when the dataset says so.
    queue, _form = queues.Queue.from_params(found, QueryDict(query), may_unblind=found.allows(request.user, Role.ADMIN))
    if queue is None:
        raise FormInvalid.of("queue", _("The queue's pair list filter is invalid."))
    return queue


@extend_schema(methods=["GET"], parameters=[
    OpenApiParameter("pair", int), OpenApiParameter("reviewer", str, description="A username"),
    OpenApiParameter("after", int, description="The previous page's last review id"),
    OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT}, default 100")],
    responses={200: out.ReviewSerializer(many=True), **ERRORS}, summary="Reviews of the dataset's pairs, by id")
@extend_schema(methods=["POST"], request=ReviewInput, responses={201: out.ReviewSerializer, 409: out.ErrorSerializer,
                                                                 **ERRORS},
               summary="Submit (or change) your review of a pair the queue handed you (reviewers), in the A/B terms "
                       "`…/reviews/next/` showed it (a, b, tie, both_bad)")
@api_view(["GET", "POST"])
def reviews(request, pk):
    if request.method == "GET":
        found = get_dataset_for(request, pk, Role.VIEWER)
        rows = Review.objects.filter(dataset=found).select_related("reviewer").order_by("pk")
        for name, lookup in (("pair", "pair_id"), ("after", "pk__gt")):
            value = request.query_params.get(name, "")
            if value and not value.isdigit():
                raise FormInvalid.of(name, _("%(name)s must be a whole number.") % {"name": name})
            if value:
                rows = rows.filter(**{lookup: int(value)})
        if request.query_params.get("reviewer"):
            rows = rows.filter(reviewer__username=request.query_params["reviewer"])
        return ApiResponse(out.ReviewSerializer(rows[:_limit(request)], many=True).data)
    found = get_dataset_for(request, pk, Role.REVIEWER, related=("review_settings",))
    data = _valid(VerdictForm(_data(request)))
    queue = _queue(request, found, data["queue"])
    pair = get_object_or_404(Pair, pk=data["pair"], dataset=found)
    values = queues.review_values(queue, pair, request.user, data["verdict"], data["better_correct"],
                                  data["prompt_ok"], data["note"])
    try:
        with transaction.atomic():
            review = queues.submit(queue, request.user, pair, values)
    except queues.QueueError as exc:
        raise Conflict(str(exc)) from None
    return ApiResponse(out.ReviewSerializer(review).data, status=201)


NextInput = inline_serializer("NextReviewInput", {
    "queue": serializers.CharField(required=False, allow_blank=True,
                                   help_text="Pair list parameters as a query string (e.g. `status=pending&"
                                             "domain=math`) or `audit=<id>`; empty: every pair."),
})


@extend_schema(request=NextInput, responses={200: out.AssignmentSerializer, 204: None, **ERRORS},
               summary="Take the next pair of a review queue (reviewers); 204 when it has none left for you")
@api_view(["POST"])
def review_next(request, pk):
    found = get_dataset_for(request, pk, Role.REVIEWER, related=("review_settings",))
    query = _data(request).get("queue") or ""
    if not isinstance(query, str):
        raise FormInvalid.of("queue", _("queue must be a query string."))
    queue = _queue(request, found, query)
    assignment = queues.next_assignment(queue, request.user)
    if assignment is None:
        return ApiResponse(status=204)
    shown = queues.item(queue, request.user, assignment)
    sides = {entry["letter"].lower(): {"id": entry["response"].pk, "text": entry["response"].text}
             for entry in shown["responses"]}
    return ApiResponse({"pair": assignment.pair_id, "queue": queue.query, "blind": queue.blind,
                        "messages": shown["pair"].prompt.messages, **sides})


# Pipeline jobs: scoring, pair building, reward models, pairwise re-judging.

ScoreInput = form_serializer("ScoreInput", ScoreForm)
BuildInput = form_serializer("BuildPairsInput", BuildPairsForm)
TrainInput = form_serializer("TrainRewardInput", TrainRewardForm)
FilterInput = form_serializer("RewardFilterInput", ThresholdForm, extra={
    "mode": serializers.ChoiceField(choices=list(MODES), help_text="score: reward the responses only; apply: "
                                    "score and filter at the threshold; unfilter: undo this model's filtering")})
RejudgeInput = form_serializer("RejudgeInput", RejudgeForm)


@extend_schema(request=ScoreInput, responses=STARTED, summary="Score responses with LLM judges → job (admins)")
@api_view(["POST"])
def scoring(request, pk):
    found = get_dataset_for(request, pk, Role.ADMIN)
    form = _form(ScoreForm, request)
    _valid(form)
    try:
        started = start_scoring(found, user=request.user, **form.options())
    except ValueError as exc:
        raise FormInvalid.of("__all__", str(exc)) from None
    return _started(request, started)


@extend_schema(request=BuildInput, responses={**STARTED, 409: out.ErrorSerializer},
               summary="Build pairs from the judges' scores → job (admins); 409 while a build is under way")
@api_view(["POST"])
def pair_builds(request, pk):
    found = get_dataset_for(request, pk, Role.ADMIN)
    data = _valid(_form(lambda data: BuildPairsForm.for_dataset(found, data), request))
    try:
        started = pairing.start_build(found, data["params"], user=request.user)
    except pairing.BuildAlreadyRunning as exc:
        raise Conflict(_("A pair build of this dataset is already under way (job %(job)s).")
                       % {"job": exc.job.pk}) from None
    return _started(request, started)


@extend_schema(methods=["GET"], responses={200: out.RewardModelSerializer(many=True), **ERRORS},
               summary="Reward models you may use on this dataset")
@extend_schema(methods=["POST"], request=TrainInput, responses=STARTED,
               summary="Train the built-in reward model on this dataset → job (admins)")
@api_view(["GET", "POST"])
def reward_models(request, pk):
    if request.method == "GET":
        get_dataset_for(request, pk, Role.VIEWER)
        rows = visible_reward_models(request.user).order_by("name", "-version")
        return ApiResponse(out.RewardModelSerializer(rows, many=True).data)
    found = get_dataset_for(request, pk, Role.ADMIN)
    data = _valid(_form(TrainRewardForm, request))
    params = train_params(data["name"], test_fraction=data["test_fraction"], seed=data["seed"])
    return _started(request, jobs.create_job("train_reward_model", dataset=found, user=request.user, params=params))


@extend_schema(request=FilterInput, responses=STARTED,
               summary="Score with a reward model, filter pairs at a margin threshold, or undo it → job (admins)")
@api_view(["POST"])
def reward_filter(request, pk, model_pk):
    found = get_dataset_for(request, pk, Role.ADMIN)
    reward_model = get_reward_model_for(request, model_pk)
    body = _data(request)
    mode = body.get("mode", "apply")
    if mode not in MODES:
        raise FormInvalid.of("mode", _("mode must be one of %(modes)s.") % {"modes": ", ".join(MODES)})
    threshold = _valid(_form(ThresholdForm, request))["threshold"] if mode == "apply" else 0.0
    params = filter_params(reward_model, mode=mode, threshold=threshold)
    return _started(request, jobs.create_job("reward_filter", dataset=found, user=request.user, params=params))


@extend_schema(request=RejudgeInput, responses=STARTED,
               summary="Ask a judge, in both orders, about the pairs of a list (`selection`: the pair list's "
                       "query string) → job (admins)")
@api_view(["POST"])
def rejudge(request, pk):
    found = get_dataset_for(request, pk, Role.ADMIN)
    data = _valid(_form(RejudgeForm, request))
    pairs, list_form = select_pairs(found, QueryDict(data["selection"]))
    if pairs is None:
        raise FormInvalid(list_form)
    try:
        started = start_rejudge(found, data["judge"], pairs, limit=data["limit"], described=data["selection"],
                                user=request.user)
    except ValueError as exc:
        raise FormInvalid.of("__all__", str(exc)) from None
    return _started(request, started)


# Decisions: keep, discard or swap the pairs of a list, recorded as a batch and undone as a whole.

DecisionInput = form_serializer("DecisionInput", DecisionForm, exclude=("next",))


def _batch(request, pk, batch_pk, role):
    found = get_dataset_for(request, pk, role)
    return get_object_or_404(DecisionBatch.objects.select_related("actor", "undone_by", "job"), pk=batch_pk,
                             dataset=found)


def _batch_answer(request, batch, code=200):
    body = out.DecisionSerializer(batch, context={"request": request}).data
    return ApiResponse(body, status=202 if batch.job_id and batch.job.finished_at is None else code)


@extend_schema(methods=["GET"], parameters=[OpenApiParameter("policy", bool, description="Include the review "
                                                                                         "policy's batches")],
               responses={200: out.DecisionSerializer(many=True), **ERRORS}, summary="The dataset's decisions, newest first")
@extend_schema(methods=["POST"], request=DecisionInput,
               responses={200: out.DecisionPreviewSerializer, 201: out.DecisionSerializer, 202: out.DecisionSerializer,
                          **ERRORS},
               summary="Keep, discard or swap the pairs of a list (`selection`: the pair list's query string, "
                       "`pair=<id>` for one) (admins). Without `confirm`: what it would change (200); with it: "
                       "the decision (201), or 202 with its job for a large list")
@api_view(["GET", "POST"])
def decision_list(request, pk):
    if request.method == "GET":
        found = get_dataset_for(request, pk, Role.VIEWER)
        rows = DecisionBatch.objects.filter(dataset=found).select_related("actor", "undone_by", "job")
        if request.query_params.get("policy") not in ("1", "true"):
            rows = rows.exclude(action=DecisionBatch.Action.POLICY)
        return ApiResponse(out.DecisionSerializer(rows[:_limit(request)], many=True,
                                                  context={"request": request}).data)
    found = get_dataset_for(request, pk, Role.ADMIN)
    data = _valid(_form(DecisionForm, request))
    pairs, errors = decisions.pairs_of_selection(found, data["selection"])
    if pairs is None:
        raise FormInvalid.of("selection", "; ".join(errors))
    try:
        if not data["confirm"]:
            return ApiResponse(decisions.preview(found, pairs, data["action"]))
        batch = decisions.start_decision(found, data["selection"], data["action"], request.user, data["reason"])
    except decisions.DecisionError as exc:
        raise FormInvalid.of("__all__", str(exc)) from None
    return _batch_answer(request, batch, code=201)


@extend_schema(responses={200: out.DecisionSerializer, **ERRORS}, summary="One decision")
@api_view(["GET"])
def decision(request, pk, batch_pk):
    return _batch_answer(request, _batch(request, pk, batch_pk, Role.VIEWER))


@extend_schema(request=None, responses={200: out.DecisionSerializer, 202: out.DecisionSerializer, **ERRORS},
               summary="Undo a decision (admins): each pair gets back the status it had, unless something changed "
                       "it since; 202 with its job for a large one")
@api_view(["POST"])
def decision_undo(request, pk, batch_pk):
    batch = _batch(request, pk, batch_pk, Role.ADMIN)
    try:
        batch = decisions.start_undo(batch, request.user)
    except decisions.DecisionError as exc:
        raise FormInvalid.of("__all__", str(exc)) from None
    return _batch_answer(request, batch)


# Exports.

ExportInput = form_serializer("ExportInput", ExportForm)


@extend_schema(request=ExportInput, responses={202: out.ExportSerializer, **ERRORS},
               summary="Export pairs → an export whose job writes the files (reviewers and admins)")
@api_view(["POST"])
def export_create(request, pk):
    found = get_dataset_for(request, pk, Role.REVIEWER)
    form = _form(ExportForm, request)
    data = _valid(form)
    try:
        export = exports.create_export(found, data["format"], form.selection(), user=request.user)
    except exports.ExportError as exc:
        raise FormInvalid.of("__all__", str(exc)) from None
    response = ApiResponse(out.ExportSerializer(export, context={"request": request}).data, status=202)
    response["Location"] = reverse("api-export", args=[export.pk])
    return response


@extend_schema(responses={200: out.ExportSerializer, **ERRORS},
               summary="An export: its job and, once done, its files with their download URLs")
@api_view(["GET"])
def export(request, pk):
    found = get_export_for(request, pk, Role.VIEWER)
    return ApiResponse(out.ExportSerializer(found, context={"request": request}).data)


@extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
               summary="Download one file of an export")
@api_view(["GET"])
def export_file(request, pk, filename):
    found = get_export_for(request, pk, Role.VIEWER)
    path = found.file_named(filename)
    if path is None or not path.is_file():
        raise Http404("No such file in this export.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=filename)

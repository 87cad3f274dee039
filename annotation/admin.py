from django import forms
from django.contrib import admin, messages
from django.db import connection, transaction
from django.utils.translation import gettext as _

from . import models
from .ingest.writer import lock_dataset_rows
from .judge_client import JudgeError, check_env_name, test_connection
from .judge_providers import DEFAULT_PROVIDER
from .scoring_admin import score_selected


class DeletesUnderDatasetLock:
    """Deleting prompts or responses holds their datasets' row lock: the references to them carry no
    database constraint (annotation/models.py), so an import must not add a pair of a response that a
    deletion has already collected its dependents for."""

    def delete_model(self, request, obj):
        with transaction.atomic(), connection.cursor() as cursor:
            lock_dataset_rows(cursor, obj.dataset_id)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(), connection.cursor() as cursor:
            for dataset_id in sorted(set(queryset.values_list("dataset_id", flat=True))):
                lock_dataset_rows(cursor, dataset_id)
            super().delete_queryset(request, queryset)


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
    actions = [score_selected]
    list_display = ["name", "is_benchmark", "created_by", "created_at"]
    list_filter = ["is_benchmark"]
    search_fields = ["name", "description"]
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["dataset", "user", "role", "created_at"]
    list_filter = ["role", "dataset"]
    search_fields = ["user__username", "dataset__name"]
    autocomplete_fields = ["user", "dataset"]


@admin.register(models.Prompt)
class PromptAdmin(DeletesUnderDatasetLock, admin.ModelAdmin):
    actions = [score_selected]
    list_display = ["id", "dataset", "domain", "short_query", "source", "created_at"]
    list_filter = ["domain", "dataset"]
    search_fields = ["query"]
    show_full_result_count = False  # COUNT(*) over a million rows on every page is not worth it
    raw_id_fields = ["dataset"]

    @admin.display(description="query")
    def short_query(self, obj):
        return obj.query[:80]


@admin.register(models.Response)
class ResponseAdmin(DeletesUnderDatasetLock, admin.ModelAdmin):
    actions = [score_selected]
    list_display = ["id", "dataset", "model", "short_text", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["model"]
    show_full_result_count = False
    raw_id_fields = ["dataset", "prompt"]

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


class JudgeForm(forms.ModelForm):
    base_url = forms.URLField(required=False, assume_scheme="https",
                              help_text="Blank for judges whose scores were imported.")

    class Meta:
        model = models.Judge
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].required = False

    def clean_provider(self):
        # Left out of a form post (a script, an older form): the OpenAI-compatible API, as before providers.
        return self.cleaned_data["provider"] or DEFAULT_PROVIDER

    def clean_api_key_env(self):
        try:
            return check_env_name(self.cleaned_data["api_key_env"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_max_concurrency(self):
        value = self.cleaned_data["max_concurrency"]
        if value < 1:
            raise forms.ValidationError("At least 1 request in flight.")
        return value


@admin.register(models.Judge)
class JudgeAdmin(admin.ModelAdmin):
    form = JudgeForm
    list_display = ["name", "family", "provider", "model", "base_url", "api_key_env", "max_concurrency",
                    "is_active"]
    list_filter = ["family", "provider", "is_active"]
    search_fields = ["name", "model", "family"]
    actions = ["test_connection"]
    fieldsets = [
        (None, {"fields": ["name", "family", "is_active"]}),
        ("API", {"fields": ["provider", "base_url", "model", "api_key_env"],
                 "description": "The provider is the kind of API at the base URL (e.g. "
                                "https://api.deepseek.com/v1 for an OpenAI-compatible one, "
                                "https://api.anthropic.com/v1 for Anthropic Messages). "
                                "api_key_env is the NAME of the environment variable "
                                "holding the key, never the key itself. Only variables marked as provider keys "
                                "can be named: by default those starting with COIGP_JUDGE_KEY_ (e.g. "
                                "COIGP_JUDGE_KEY_DEEPSEEK); set it where the worker runs, not only where the web "
                                "server runs."}),
        ("Sampling", {"fields": ["temperature", "max_tokens", "timeout_s"]}),
        ("Limits", {"fields": ["max_concurrency", "rpm_limit", "tpm_limit"]}),
        ("Price per 1M tokens", {"fields": ["price_input_per_m", "price_output_per_m"]}),
    ]

    @admin.action(description="Test connection (one tiny request)")
    def test_connection(self, request, queryset):
        for judge in queryset:
            try:
                answer = test_connection(judge)
            except JudgeError as exc:
                self.message_user(request, f"{judge.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, _("%(name)s answered in %(ms)s ms: %(text)s") % {
                    "name": judge.name, "ms": answer.latency_ms, "text": repr(answer.text[:200])}, messages.SUCCESS)


@admin.register(models.Rubric)
class RubricAdmin(admin.ModelAdmin):
    """Rubrics are versioned: saving an edit adds the next version and leaves the old one as it was,
    so every judgement keeps pointing at the text it was made with."""

    list_display = ["domain", "version", "created_by", "created_at"]
    list_filter = ["domain"]
    readonly_fields = ["version", "created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["domain"] if obj else [])

    def save_model(self, request, obj, form, change):
        if change and not form.has_changed():
            return
        saved = models.Rubric.add_version(obj.domain, obj.text, request.user)
        obj.pk, obj.version = saved.pk, saved.version
        if change:
            self.message_user(request, _(
                "Saved as version %(new)s of the %(domain)s rubric; version %(old)s is kept for the judgements made "
                "with it.") % {"new": saved.version, "domain": obj.domain, "old": saved.version - 1})

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.Judgement)
class JudgementAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "rubric", "score", "status", "input_tokens", "output_tokens", "cost", "created_at"]
    list_filter = ["status", "judge"]
    show_full_result_count = False
    raw_id_fields = ["response", "rubric"]


@admin.register(models.PairBuildRun)
class PairBuildRunAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "job", "created_at", "finished_at"]
    list_filter = ["dataset"]
    raw_id_fields = ["dataset", "job"]


@admin.register(models.Pair)
class PairAdmin(admin.ModelAdmin):
    actions = [score_selected]
    list_display = ["id", "dataset", "domain", "origin", "status", "status_reason", "chosen_score", "rejected_score"]
    list_filter = ["status", "domain", "origin", "dataset"]
    search_fields = ["status_reason"]
    show_full_result_count = False
    raw_id_fields = ["dataset", "prompt", "chosen", "rejected", "build_run"]


class RewardModelForm(forms.ModelForm):
    """A Hugging Face model needs a path; an endpoint a valid configuration (and never a pasted key)."""

    class Meta:
        model = models.RewardModel
        fields = "__all__"

    def clean(self):
        from .reward.http import endpoint_config

        data = super().clean()
        backend, config = data.get("backend"), data.get("config") or {}
        if backend == models.RewardModel.Backend.HF and not config.get("path"):
            raise forms.ValidationError({"config": _('A Hugging Face model needs "path": a local folder or a Hub id.')})
        if backend == models.RewardModel.Backend.HTTP:
            keys = ("protocol", "model", "api_key_env", "timeout_s", "concurrency", "prompt_field", "response_field",
                    "reward_path", "send_messages")
            try:
                endpoint_config(config.get("base_url", ""), **{k: config[k] for k in keys if k in config})
            except (ValueError, TypeError) as exc:
                raise forms.ValidationError({"config": str(exc)}) from None
        return data


@admin.register(models.RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
    form = RewardModelForm
    list_display = ["name", "version", "backend", "created_at"]
    list_filter = ["backend"]
    search_fields = ["name"]


@admin.register(models.RewardScore)
class RewardScoreAdmin(admin.ModelAdmin):
    list_display = ["id", "reward_model", "reward", "created_at"]
    list_filter = ["reward_model"]
    show_full_result_count = False
    raw_id_fields = ["response"]


class JobErrorInline(admin.TabularInline):
    model = models.JobError
    extra = 0
    readonly_fields = ["line", "reason", "excerpt", "created_at"]
    can_delete = False
    max_num = 0


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "dataset", "status", "done", "total", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "kind", "dataset"]
    search_fields = ["error", "celery_task_id"]
    readonly_fields = ["heartbeat_at", "worker_token", "celery_task_id", "attempts"]
    inlines = [JobErrorInline]


# Near-duplicate flags (annotation/ingest/near_duplicates.py): read-only views; the job writes them.
class NearDuplicateMemberInline(admin.TabularInline):
    model = models.NearDuplicateMember
    extra = 0
    raw_id_fields = ["prompt"]
    readonly_fields = ["prompt", "similarity"]
    can_delete = False
    max_num = 0


@admin.register(models.NearDuplicateGroup)
class NearDuplicateGroupAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "size", "threshold", "created_at"]
    list_filter = ["dataset"]
    raw_id_fields = ["dataset", "job"]
    inlines = [NearDuplicateMemberInline]


@admin.register(models.ContaminationMatch)
class ContaminationMatchAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "prompt", "benchmark_prompt", "similarity", "created_at"]
    list_filter = ["dataset"]
    show_full_result_count = False
    raw_id_fields = ["dataset", "prompt", "benchmark_prompt", "job"]

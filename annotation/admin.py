from django.contrib import admin

from . import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
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
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "domain", "short_query", "source", "created_at"]
    list_filter = ["domain", "dataset"]
    search_fields = ["query"]
    show_full_result_count = False  # COUNT(*) over a million rows on every page is not worth it
    raw_id_fields = ["dataset"]

    @admin.display(description="query")
    def short_query(self, obj):
        return obj.query[:80]


@admin.register(models.Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "model", "short_text", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["model"]
    show_full_result_count = False
    raw_id_fields = ["dataset", "prompt"]

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


@admin.register(models.Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "family", "model", "base_url", "api_key_env", "max_concurrency", "is_active"]
    list_filter = ["family", "is_active"]
    search_fields = ["name", "model", "family"]


@admin.register(models.Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["domain", "version", "created_by", "created_at"]
    list_filter = ["domain"]


@admin.register(models.Judgement)
class JudgementAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "rubric", "score", "status", "input_tokens", "output_tokens", "cost", "created_at"]
    list_filter = ["status", "judge"]
    show_full_result_count = False
    raw_id_fields = ["response", "rubric"]


@admin.register(models.PairBuildRun)
class PairBuildRunAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "created_at"]
    list_filter = ["dataset"]


@admin.register(models.Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "domain", "origin", "status", "status_reason", "chosen_score", "rejected_score"]
    list_filter = ["status", "domain", "origin", "dataset"]
    search_fields = ["status_reason"]
    show_full_result_count = False
    raw_id_fields = ["dataset", "prompt", "chosen", "rejected", "build_run"]


@admin.register(models.RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
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

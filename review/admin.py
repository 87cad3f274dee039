from django.contrib import admin

from .models import Audit, Export, Review, ReviewAssignment, ReviewEvent, ReviewSettings


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "reviewer", "verdict", "better_correct", "prompt_ok", "updated_at"]
    list_filter = ["verdict", "better_correct", "prompt_ok", "reviewer"]
    search_fields = ["note", "reviewer__username"]
    raw_id_fields = ["pair"]
    readonly_fields = ["dataset", "domain"]  # copied from the pair on save


@admin.register(ReviewEvent)
class ReviewEventAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "actor", "at", "kind", "undone"]
    list_filter = ["actor"]
    raw_id_fields = ["pair", "review"]

    def has_change_permission(self, request, obj=None):
        return False  # the audit trail is append-only

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "format", "job", "created_by", "created_at"]
    list_filter = ["format", "dataset"]
    raw_id_fields = ["job"]
    readonly_fields = ["params", "files", "manifest"]


@admin.register(ReviewSettings)
class ReviewSettingsAdmin(admin.ModelAdmin):
    list_display = ["dataset", "reviews_per_pair", "blind_review"]


@admin.register(ReviewAssignment)
class ReviewAssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "reviewer", "status", "assigned_at", "expires_at", "done_at"]
    list_filter = ["status"]
    raw_id_fields = ["pair"]


@admin.register(Audit)
class AuditAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "label", "n_per_domain", "reviews_per_pair", "seed", "created_by", "created_at"]
    list_filter = ["dataset"]

from django.contrib import admin

from .models import Review, ReviewEvent


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "reviewer", "verdict", "better_correct", "prompt_ok", "updated_at"]
    list_filter = ["verdict", "better_correct", "prompt_ok", "reviewer"]
    search_fields = ["note", "reviewer__username"]
    raw_id_fields = ["pair"]


@admin.register(ReviewEvent)
class ReviewEventAdmin(admin.ModelAdmin):
    list_display = ["id", "pair", "actor", "at"]
    list_filter = ["actor"]
    raw_id_fields = ["pair", "review"]

    def has_change_permission(self, request, obj=None):
        return False  # the audit trail is append-only

    def has_delete_permission(self, request, obj=None):
        return False

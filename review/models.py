"""Reviews: people's verdicts on pairs, with every change kept."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import Pair


class Review(models.Model):
    class Verdict(models.TextChoices):
        CHOSEN_BETTER = "chosen_better", _("Chosen is better")
        REJECTED_BETTER = "rejected_better", _("Rejected is better")
        TIE = "tie", _("Tie")
        BOTH_BAD = "both_bad", _("Both bad")

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    better_correct = models.BooleanField(null=True, blank=True, help_text=_("Is the better response correct?"))
    prompt_ok = models.BooleanField(null=True, blank=True, help_text=_("Is the prompt well-formed and not sensitive?"))
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "reviewer"], name="review_unique")]
        indexes = [models.Index(fields=["reviewer", "updated_at"], name="review_reviewer_updated")]

    def snapshot(self):
        return {
            "verdict": self.verdict,
            "better_correct": self.better_correct,
            "prompt_ok": self.prompt_ok,
            "note": self.note,
        }


class ReviewEvent(models.Model):
    """The audit trail: who changed a review, when, and what it was before and after."""

    review = models.ForeignKey(Review, null=True, on_delete=models.SET_NULL, related_name="events")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="review_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]

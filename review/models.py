"""Reviews: people's verdicts on pairs, with every change kept; exports of the audited pairs."""

from pathlib import Path

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import Dataset, Domain, Job, Pair, Response


class Review(models.Model):
    class Verdict(models.TextChoices):
        CHOSEN_BETTER = "chosen_better", _("Chosen is better")
        REJECTED_BETTER = "rejected_better", _("Rejected is better")
        TIE = "tie", _("Tie")
        BOTH_BAD = "both_bad", _("Both bad")

    # A review accepts its pair when it finds the chosen response better and marks it correct: the paper's
    # human check, counted by the dashboards' acceptance, an audit's good pairs and the reward benchmark's
    # reviewed gold pairs (whose SQL in annotation/reward/benchmark.py says the same until it moves here).
    # Unanswered (null) correctness is no yes: nothing verified the response. The queue never stores null
    # with this verdict (its box is ticked by default); an edit in the admin can.
    ACCEPTS = Q(verdict=Verdict.CHOSEN_BETTER, better_correct=True)

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    better_correct = models.BooleanField(null=True, blank=True, help_text=_("Is the better response correct?"))
    prompt_ok = models.BooleanField(null=True, blank=True, help_text=_("Is the prompt well-formed and not sensitive?"))
    note = models.TextField(blank=True)
    # How the verdict was given: blind (labels, scores and others' verdicts hidden) and whether response A was the
    # rejected one (drawn at random per pair and reviewer when the queue handed the pair out). Null: not recorded
    # (reviews from before these were, or edits outside the queue).
    blind = models.BooleanField(null=True, blank=True)
    rejected_first = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The pair's dataset and domain, copied when the review is saved (a pair never changes either): a
    # dataset's review numbers are then an index scan of its reviews instead of a join to a million pairs
    # (200-300 ms at 1M pairs and 25,000 reviews, measured, against a few).
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+", db_index=False)
    domain = models.CharField(max_length=8, choices=Domain.choices)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        constraints = [models.UniqueConstraint(fields=["pair", "reviewer"], name="review_unique")]
        indexes = [models.Index(fields=["reviewer", "updated_at"], name="review_reviewer_updated"),
                   # The dashboards' freshness: reviews saved since a snapshot.
                   models.Index(fields=["updated_at"], name="review_updated"),
                   models.Index(fields=["dataset", "domain"], name="review_dataset_domain")]

    def save(self, *args, **kwargs):
        self.dataset_id, self.domain = self.pair.dataset_id, self.pair.domain  # always the pair's
        super().save(*args, **kwargs)

    def snapshot(self):
        return {
            "verdict": self.verdict,
            "better_correct": self.better_correct,
            "prompt_ok": self.prompt_ok,
            "note": self.note,
            "blind": self.blind,
            "rejected_first": self.rejected_first,
        }


class ReviewEvent(models.Model):
    """The audit trail: who changed a review, when, and what it was before and after."""

    review = models.ForeignKey(Review, null=True, on_delete=models.SET_NULL, related_name="events")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="review_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # What made the change: a queue submit, an undo of one (undone marks the submit it reverted), an edit elsewhere.
    kind = models.CharField(max_length=8, default="edit")
    undone = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("review event")
        verbose_name_plural = _("review events")
        ordering = ["-at"]


class Export(models.Model):
    """One export: what was asked (`params`), the job that writes it, and what it wrote.

    `files` lists the files written, each {name, kind, split, rows, bytes, sha256}; the download
    view serves only these names, from `directory()`."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="exports")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="export")
    format = models.CharField(max_length=16)
    params = models.JSONField(default=dict)
    files = models.JSONField(default=list, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.format} export {self.pk} of {self.dataset}"

    def directory(self):
        return Path(self.params["out_dir"])

    def file_named(self, name):
        """The path of one of this export's own files under MEDIA_ROOT/exports/<id>/, or None: no other
        name is ever served, nor files a command-line export wrote elsewhere."""
        served = Path(settings.MEDIA_ROOT) / "exports" / str(self.pk)
        if name not in {f["name"] for f in self.files} or self.directory().resolve() != served.resolve():
            return None
        return served / name


class DashboardSnapshot(models.Model):
    """A dashboard's numbers for one dataset, computed by the `dashboard_refresh` job (or on the first
    visit), so that pages over a million pairs read one row instead of aggregating them on every request."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="dashboard_snapshots")
    name = models.CharField(max_length=32)  # "overview", "disagreements", "judges"
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)
    # Seconds the computation took: shown beside the freshness, and the reason the snapshot exists.
    seconds = models.FloatField(default=0)

    class Meta:
        verbose_name = _("dashboard snapshot")
        verbose_name_plural = _("dashboard snapshots")
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="dashboard_snapshot_unique")]


class SelectionMember(models.Model):
    """A pair in a costly named selection (a judge-based disagreement view, at its default settings) as of
    the dataset's last dashboard refresh: the list behind the number reads these rows while no job of the
    dataset has run since, and the live query otherwise (review/dashboards.py)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    view = models.CharField(max_length=32)
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("stored list member")
        verbose_name_plural = _("stored list members")
        # (dataset, view) → pair ids is an index-only scan of this constraint's index.
        constraints = [models.UniqueConstraint(fields=["dataset", "view", "pair"], name="selection_member_unique")]


class ResponseTextCheck(models.Model):
    """What the text checks (review/text_checks.py) read in one response, stored once: a response's text
    and prompt never change, so the low-quality rules that read texts (cut off, empty, refusal, language)
    are a join on this table instead of a regular expression over a million texts. Rows of an older
    `version` of the checks are read again by the next quality count."""

    response = models.OneToOneField(Response, primary_key=True, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveSmallIntegerField()
    cut = models.CharField(max_length=8, blank=True)  # why the text looks cut off: fence, bracket, ...
    content = models.PositiveSmallIntegerField()  # content units, words that say nothing left out
    short_ok = models.BooleanField()  # the prompt asks for a short answer
    refusal = models.FloatField()  # how surely it opens by declining, 0-1
    language = models.CharField(max_length=2, blank=True)  # the prose's dominant language
    off_language = models.FloatField()  # share of the prose in a language its Chinese prompt did not ask for

    class Meta:
        verbose_name = _("response text check")
        verbose_name_plural = _("response text checks")


class ReviewSettings(models.Model):
    """How a dataset is reviewed. A dataset without a row has the defaults (one reviewer per pair, blind, reviews
    do not decide statuses)."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="review_settings")
    reviews_per_pair = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("How many different reviewers the queue hands each pair to (overlap)."))
    blind_review = models.BooleanField(
        default=True, help_text=_("Hide judge scores, analyses, reward margins and which response is chosen; show the "
                                  "responses as A and B in an order drawn at random per pair and reviewer (and "
                                  "recorded); hide other reviewers' verdicts until one's own is in. Admins may "
                                  "open a queue unblinded."))
    # How reviews decide a pair's status (review/decisions.py, apply_review_policy): when this many reviews agree
    # (and more than agree on anything else) the pair is kept, swapped or discarded; 0: reviews never change it.
    status_quorum = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(10)],
        help_text=_("When this many reviews agree, they decide the pair's status: chosen better and correct keeps it, "
                    "rejected better and correct swaps it, both bad or the better one incorrect discards it. "
                    "0: reviews never change a status. A pair an admin decided is left as the admin decided."))

    class Meta:
        verbose_name = _("review settings")
        verbose_name_plural = _("review settings")

    @classmethod
    def of(cls, dataset):
        descriptor = type(dataset).review_settings
        if descriptor.is_cached(dataset):  # read with the dataset (select_related): no query
            return descriptor.related.get_cached_value(dataset) or cls(dataset=dataset)
        return cls.objects.filter(dataset=dataset).first() or cls(dataset=dataset)


class ReviewAssignment(models.Model):
    """A pair handed to a reviewer by a queue. While `assigned` and its lease runs, the pair counts as taken
    (a reviewer who closes the tab loses it when the lease expires); `done` when the review is in; `skipped`
    gives it back to the others."""

    class Status(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned")
        DONE = "done", _("Done")
        SKIPPED = "skipped", _("Skipped")

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The queue it came from (dataset and canonical filter, or an audit): history, j/k and undo stay in it.
    queue_key = models.CharField(max_length=500)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ASSIGNED)
    assigned_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    # In a blind queue, whether response A is the rejected one: drawn at random when the pair is first handed to
    # this reviewer and kept (reloads, j/k and later visits show the same order); copied onto the review.
    rejected_first = models.BooleanField(null=True, blank=True)

    class Meta:
        verbose_name = _("review assignment")
        verbose_name_plural = _("review assignments")
        constraints = [models.UniqueConstraint(fields=["pair", "reviewer"], name="assignment_unique")]
        indexes = [models.Index(fields=["reviewer", "queue_key", "status"], name="assignment_reviewer_queue")]


class Audit(models.Model):
    """A seeded stratified sample of a dataset's pairs (n per domain), reviewed by k reviewers: a dated
    record, so that audits of two versions of a dataset can be compared."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="audits")
    label = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    seed = models.IntegerField(default=0)
    n_per_domain = models.PositiveIntegerField(default=40)
    reviews_per_pair = models.PositiveSmallIntegerField(default=2)
    # The pair list the sample was drawn from (PairFilter parameters), and the pairs drawn, in draw order.
    query = models.CharField(max_length=500, blank=True)
    pair_ids = models.JSONField(default=list)

    class Meta:
        verbose_name = _("audit")
        verbose_name_plural = _("audits")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.label or f"audit {self.pk}"


class PairSuspicion(models.Model):
    """How likely the pair's automatic label is wrong (review/suspicion.py: a logistic score over the signals
    the app has on it), stored by the quality-count job so that "most suspicious first" is an index scan at
    a million pairs. `reasons` are the signals that raised it most, as [[signal name, contribution], …]."""

    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, primary_key=True, related_name="suspicion")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    reasons = models.JSONField(default=list)
    # Sort keys of the pair list stored with the score, since neither is a column of the pair: the newest
    # reward model's margin r(chosen) − r(rejected) (None: no reward model scored the dataset) and the
    # characters of both responses.
    margin = models.FloatField(null=True, blank=True)
    length = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("pair suspicion")
        verbose_name_plural = _("pair suspicions")
        # The pair list and the queue walk a dataset's pairs by (score desc, pair id), (margin, pair id) and
        # (length desc, pair id desc).
        indexes = [models.Index("dataset", models.F("score").desc(), "pair", name="pair_suspicion_order"),
                   models.Index(fields=["dataset", "margin", "pair"], name="pair_suspicion_margin"),
                   models.Index("dataset", models.F("length").desc(nulls_last=True), models.F("pair").desc(),
                                name="pair_suspicion_length")]


class SavedFilter(models.Model):
    """A pair list's parameters saved under a name by one user for one dataset (the URL of a list is its
    definition, review/selections.py), listed above that dataset's pair list."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    query = models.CharField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        constraints = [models.UniqueConstraint(fields=["user", "dataset", "name"], name="saved_filter_unique")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class DecisionBatch(models.Model):
    """One decision on a set of pairs (review/decisions.py): keep, discard or swap them, or a review policy's
    verdicts; who, when, why, over which list, how many changed; undone as a whole. Each pair it changed has a
    PairDecision with the status and reason it had before, which undo puts back."""

    class Action(models.TextChoices):
        KEEP = "keep", _("Keep")
        DISCARD = "discard", _("Discard")
        SWAP = "swap", _("Swap chosen and rejected")
        POLICY = "policy", _("Review policy")

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="decision_batches")
    action = models.CharField(max_length=8, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    # The pair list it was made over (PairFilter parameters, as in the list's URL).
    selection = models.CharField(max_length=2000, blank=True)
    changed = models.PositiveIntegerField(default=0)
    # Pairs of the list left as they were: {"already": n, "withdrawn": n}.
    unchanged = models.JSONField(default=dict, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    # At undo: pairs put back, and pairs left alone because something changed them after this decision.
    restored = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    # The job deciding or undoing it, for a list too large to change in one request (review/decisions.py).
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["dataset", "at"], name="decision_batch_dataset_at")]

    def __str__(self):
        return f"decision {self.pk}"

    def tag(self):
        """The status_reason of the pairs it changed, while they are as it left them."""
        return f"{'review-policy' if self.action == self.Action.POLICY else 'decision'} batch={self.pk}"


class PairDecision(models.Model):
    """A pair a DecisionBatch changed: the status and reason before (restored by undo) and the status it set."""

    pk = models.CompositePrimaryKey("batch_id", "pair_id")
    batch = models.ForeignKey(DecisionBatch, on_delete=models.CASCADE, related_name="pairs")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="decisions")
    prior_status = models.CharField(max_length=10)
    prior_reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10)


class SearchSegment(models.Model):
    """Block filters of a run of a dataset's prompts or responses (review/search_blocks.py), written by
    the search-index job: the rows of `table` in the dataset with first_id ≤ id ≤ last_id, in id order,
    cut into blocks of `block_rows`. `block_starts` holds each block's first id (int64, little-endian);
    `filters` the bucket-major bit matrix (one row of ceil(blocks/8) bytes per bucket), stored
    uncompressed out of line so that a search reads a few rows of it with substring()."""

    class Table(models.TextChoices):
        PROMPT = "prompt"
        RESPONSE = "response"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+", db_index=False)
    table = models.CharField(max_length=8, choices=Table.choices)
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    rows = models.PositiveIntegerField()
    blocks = models.PositiveIntegerField()
    block_rows = models.PositiveIntegerField()
    bucket_bits = models.PositiveSmallIntegerField()
    block_starts = models.BinaryField()
    filters = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("search segment")
        verbose_name_plural = _("search segments")
        indexes = [models.Index(fields=["dataset", "table", "last_id"], name="search_segment_dataset")]

"""The pipeline's data: datasets and their members, prompts, responses, judges, rubrics,
judgements, pairs, reward models, and the jobs that fill them.

Every job writes through unique constraints so that a re-run or a killed worker neither
repeats nor loses work; the indexes are the ones the dataset pages filter by at 1M pairs.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .judge_providers import DEFAULT_PROVIDER, provider_choices
from .queries import latest_ok_judgements


class Domain(models.TextChoices):
    CHAT = "chat", _("Chat")
    CODE = "code", _("Code")
    MATH = "math", _("Math")
    LOGIC = "logic", _("Logic")
    NOVEL = "novel", _("Novel continuation")
    ROLE = "role", _("Role-play")
    OTHER = "other", _("Other")


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    REVIEWER = "reviewer", _("Reviewer")
    VIEWER = "viewer", _("Viewer")


# Higher includes lower: an admin may do what a reviewer may, a reviewer what a viewer may.
ROLE_RANK = {Role.VIEWER: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    is_benchmark = models.BooleanField(
        default=False, help_text=_("A benchmark's prompts are checked for contamination of training data.")
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def role_of(self, user):
        """The user's role in this dataset, or None. Superusers are admins of every dataset."""
        if not user.is_authenticated or not user.is_active:
            return None
        if user.is_superuser:
            return Role.ADMIN
        # values_list, not .only("role"): a related-manager row would load its deferred dataset_id again.
        role = Membership.objects.filter(dataset_id=self.pk, user_id=user.pk).values_list("role", flat=True).first()
        return Role(role) if role else None

    def allows(self, user, role):
        have = self.role_of(user)
        return have is not None and ROLE_RANK[have] >= ROLE_RANK[Role(role)]


class Membership(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["dataset", "user"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.dataset}"


class Prompt(models.Model):
    """A query with its context: `messages` is the whole list (system turn, history, last user turn)."""

    # Indexes that lead with another index's columns are left out (here: prompt_dataset_id and
    # prompt_dataset_domain lead with the dataset): every index costs the import an insertion per row
    # (BENCHMARKS.md, *Ingest*).
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="prompts", db_index=False)
    domain = models.CharField(max_length=8, choices=Domain.choices, default=Domain.OTHER)
    messages = models.JSONField()
    # The last user turn, kept apart for search and lists.
    query = models.TextField()
    # blake2b-128 of the exact messages (roles and texts): 16 bytes per row keeps the unique index small at 1M rows.
    content_hash = models.UUIDField()
    source = models.CharField(max_length=300, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("prompt")
        verbose_name_plural = _("prompts")
        # The hash first: the import's probe names only the hash (annotation/ingest/writer.py), so no index
        # that leads with the dataset can serve it; with the dataset first, stale statistics let the planner
        # walk a new dataset's (dataset, id) index for every probe instead (issue 17, O(n²)).
        constraints = [models.UniqueConstraint(fields=["content_hash", "dataset"], name="prompt_unique_hash")]
        indexes = [
            models.Index(fields=["dataset", "domain"], name="prompt_dataset_domain"),
            # The search-index job reads a dataset's prompts in id order from here, and search asks it whether
            # any prompt is newer than the dataset's search filters (review/search.py).
            models.Index(fields=["dataset", "id"], name="prompt_dataset_id"),
        ]

    def __str__(self):
        return self.query[:80]

    def system_prompt(self):
        return next((m["content"] for m in self.messages if m["role"] == "system"), "")

    def history(self):
        """Turns before the last user turn, without the system turn."""
        return [m for m in self.messages[:-1] if m["role"] != "system"]


class Response(models.Model):
    # As for Prompt: response_dataset_model leads with the dataset, response_unique_hash with the prompt.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="responses", db_index=False)
    # No constraint in the database for this and Pair's prompt/chosen/rejected (Django still cascades):
    # checking them cost the import a third of PostgreSQL's time (BENCHMARKS.md, issue 17). Every writer
    # and deleter of a dataset's prompts, responses and pairs holds annotation.ingest.writer's
    # lock_dataset_rows, and the rows keep their dataset's foreign key, so none is left dangling.
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses", db_index=False,
                               db_constraint=False)
    model = models.CharField(max_length=200, blank=True, help_text=_("Generator model; blank when unknown."))
    text = models.TextField()
    content_hash = models.UUIDField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        constraints = [models.UniqueConstraint(fields=["prompt", "content_hash"], name="response_unique_hash")]
        indexes = [
            models.Index(fields=["dataset", "model"], name="response_dataset_model"),
            models.Index(fields=["dataset", "id"], name="response_dataset_id"),  # as prompt_dataset_id
        ]

    def __str__(self):
        return f"{self.model or '?'}: {self.text[:60]}"


class Judge(models.Model):
    """An LLM judge behind an HTTP API, spoken as its `provider` says (judge_providers.py). The API key
    is read from the environment variable named in `api_key_env`; it is never stored here."""

    name = models.CharField(max_length=100, unique=True)
    family = models.CharField(max_length=50, blank=True, help_text=_("Model family, e.g. qwen or gpt."))
    provider = models.CharField(max_length=32, choices=provider_choices, default=DEFAULT_PROVIDER,
                                help_text=_("The kind of API at the base URL."))
    base_url = models.URLField(blank=True, help_text=_("Blank for judges whose scores were imported."))
    model = models.CharField(max_length=200, blank=True)
    api_key_env = models.CharField(max_length=100, blank=True)
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=1024)
    timeout_s = models.FloatField(default=120.0)
    max_concurrency = models.PositiveIntegerField(default=16)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    price_input_per_m = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    price_output_per_m = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("judge")
        verbose_name_plural = _("judges")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Rubric(models.Model):
    """A domain's scoring prompt. Versions are rows: editing one adds the next version."""

    domain = models.CharField(max_length=8, choices=Domain.choices)
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("rubric")
        verbose_name_plural = _("rubrics")
        constraints = [models.UniqueConstraint(fields=["domain", "version"], name="rubric_unique_version")]
        ordering = ["domain", "-version"]

    def __str__(self):
        return f"{self.domain} v{self.version}"

    @classmethod
    def add_version(cls, domain, text, user=None):
        """The domain's next version with this text; the versions before it stay as they were, for the
        judgements made with them. The domain's rows are locked so two editors get two versions."""
        with transaction.atomic():
            latest = max(cls.objects.select_for_update().filter(domain=domain).values_list("version", flat=True),
                         default=0)
            return cls.objects.create(domain=domain, version=latest + 1, text=text, created_by=user)


class JudgementQuerySet(models.QuerySet):
    def latest_ok(self, response_ids):
        """Each judge's latest ok judgement of each of these responses (the rule: annotation/queries.py)."""
        latest = latest_ok_judgements("j.response_id = ANY(%s)", columns="j.id")
        return self.filter(pk__in=RawSQL(latest, [list(response_ids)]))


class Judgement(models.Model):
    class Status(models.TextChoices):
        OK = "ok", _("OK")
        PARSE_ERROR = "parse_error", _("Parse error")
        REFUSED = "refused", _("Refused")
        ERROR = "error", _("Error")

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="judgements")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="judgements")
    # Null for scores imported from a file, which were made with a rubric we never saw.
    rubric = models.ForeignKey(Rubric, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField(null=True, blank=True)
    analysis = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = JudgementQuerySet.as_manager()

    class Meta:
        verbose_name = _("judgement")
        verbose_name_plural = _("judgements")
        constraints = [
            models.UniqueConstraint(
                fields=["response", "judge", "rubric"], name="judgement_unique", nulls_distinct=False
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=10), name="judgement_score_range"
            ),
            models.CheckConstraint(
                condition=Q(status="ok", score__isnull=False) | (~Q(status="ok") & Q(score__isnull=True)),
                name="judgement_score_iff_ok",
            ),
        ]
        indexes = [models.Index(fields=["judge", "status"], name="judgement_judge_status")]


class JudgeCacheEntry(models.Model):
    """A judge's answer to one exact request (judge, model, rubric version, messages, sampling
    settings), so that re-running a scoring job never pays for the same request twice."""

    # blake2b-128 of the request, as for prompts: a 16-byte unique index.
    key = models.UUIDField(unique=True)
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="+")
    raw_output = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class PairBuildRun(models.Model):
    """One run of pair construction from judge scores: its parameters and what it changed."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="build_runs")
    params = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # The job that ran the build (its status says whether the run finished); null for runs whose job was deleted.
    job = models.ForeignKey("Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("pair build run")
        verbose_name_plural = _("pair build runs")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"build run {self.pk}"


class Pair(models.Model):
    class Origin(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        CONSTRUCTED = "constructed", _("Constructed")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        KEPT = "kept", _("Kept")
        FILTERED = "filtered", _("Filtered")
        # A constructed pair that a later build run no longer forms; kept because reviews may point to it.
        WITHDRAWN = "withdrawn", _("Withdrawn")
        # Kept the other way round: a person's decision (or agreeing reviews) found the rejected response
        # the better one. The row keeps its original chosen/rejected; exports and reward training exchange them.
        SWAPPED = "swapped", _("Swapped")

    # Indexed with the id below (pair_dataset_id): the pair list pages a dataset's pairs in id order.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pairs", db_index=False)
    # pair_unique; no database constraint for these three (see Response.prompt)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs", db_index=False,
                               db_constraint=False)
    # Copied from the prompt: the dashboards group 1M pairs by domain without a join.
    domain = models.CharField(max_length=8, choices=Domain.choices)
    chosen = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    rejected = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.IMPORTED)
    build_run = models.ForeignKey(PairBuildRun, null=True, blank=True, on_delete=models.SET_NULL)
    chosen_score = models.FloatField(null=True, blank=True)
    rejected_score = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Why a pair is filtered: "reward:<model>", "rule:<name>", "review:both_bad", …
    status_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("pair")
        verbose_name_plural = _("pairs")
        constraints = [
            models.UniqueConstraint(fields=["prompt", "chosen", "rejected"], name="pair_unique"),
            models.CheckConstraint(condition=~Q(chosen=models.F("rejected")), name="pair_distinct_responses"),
        ]
        # Each ends in the id so that the pair list's first page under a domain and status filter is the
        # first 50 entries of one index, not a sort of every pair that matches (keyset pagination, pk > after).
        indexes = [
            models.Index(fields=["dataset", "id"], name="pair_dataset_id"),
            models.Index(fields=["dataset", "domain", "status", "id"], name="pair_dataset_domain_status_id"),
            models.Index(fields=["dataset", "status", "id"], name="pair_dataset_status_id"),
        ]

    def __str__(self):
        return f"pair {self.pk}"

    def gap(self):
        if self.chosen_score is None or self.rejected_score is None:
            return None
        return self.chosen_score - self.rejected_score


class RewardModelQuerySet(models.QuerySet):
    def newest_for(self, dataset):
        """The reward model whose margins a dataset's dashboards, pair list filters, review queue and exports
        use: the newest (created last) that scored a response of the dataset; None when none did."""
        # One probe per model, newest first, up to the first that scored the dataset: such a probe stops at its
        # first score (2 ms), where a single EXISTS over every model hashed all their scores (0.7-1.1 s at 1.4M
        # scores, measured). A newer model that scored only other datasets still costs a full probe (0.5 s).
        for model in self.order_by("-created_at", "-pk"):
            if RewardScore.objects.filter(reward_model=model, response__dataset=dataset).exists():
                return model
        return None


class RewardModel(models.Model):
    class Backend(models.TextChoices):
        BUILTIN = "builtin", _("Built-in")
        HF = "hf", _("Hugging Face")
        HTTP = "http", _("HTTP endpoint")

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    backend = models.CharField(max_length=10, choices=Backend.choices)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The dataset a built-in model was trained on: who may see the model follows who may see it.
    trained_on = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="reward_models"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    objects = RewardModelQuerySet.as_manager()

    class Meta:
        verbose_name = _("reward model")
        verbose_name_plural = _("reward models")
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="reward_model_unique_version")]

    def tag(self):
        """The start of `Pair.status_reason` for pairs this model filtered."""
        return f"reward:{self.name} v{self.version}"

    def __str__(self):
        return f"{self.name} v{self.version}"


class RewardScore(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="reward_scores")
    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="scores")
    reward = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("reward score")
        verbose_name_plural = _("reward scores")
        constraints = [models.UniqueConstraint(fields=["response", "reward_model"], name="reward_score_unique")]


class Job(models.Model):
    """Background work a user can see. A worker claims the row before working, renews its lease
    at every chunk, and commits each chunk together with its progress, so a restart resumes from
    `cursor` without repeating or losing a chunk."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        # Ran to its end, but some of its items failed (annotation/jobs.py, outcome).
        PROBLEMS = "problems", _("Finished with problems")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = (Status.SUCCEEDED, Status.PROBLEMS, Status.FAILED, Status.CANCELLED)
    # Ran to its end: what it wrote is complete, whether or not some items failed. Whatever waits for a
    # job's data (the last import, the last count) looks for these.
    COMPLETED = (Status.SUCCEEDED, Status.PROBLEMS)

    kind = models.CharField(max_length=32)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Progress in `unit`s (bytes of an input file, requests, pairs); total 0 means not yet known.
    unit = models.CharField(max_length=16, default="items")
    total = models.BigIntegerField(default=0)
    done = models.BigIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    cursor = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_token = models.CharField(max_length=32, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat")]

    def __str__(self):
        return f"{self.kind} job {self.pk}"

    @property
    def kind_info(self):
        """What the job's kind declares: its label, counts, unit (annotation/jobs.py, JobKind)."""
        from .jobs import kind_of  # jobs.py builds on these models

        return kind_of(self.kind)

    def is_finished(self):
        return self.status in self.FINISHED

    def fraction(self):
        if self.status in self.COMPLETED:
            return 1.0
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def elapsed(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def eta(self):
        """Time left at the average rate so far; None until there is a rate to go on."""
        elapsed = self.elapsed()
        if self.is_finished() or not elapsed or not self.total or self.done <= 0:
            return None
        rate = self.done / max(elapsed.total_seconds(), 1e-3)
        return timedelta(seconds=round((self.total - self.done) / rate))

    def unstored_errors_note(self):
        """The line that ends the list of the job's errors when some were counted but not stored
        (JOB_MAX_STORED_ERRORS), for the job page and the errors CSV; '' when every one is stored."""
        more = self.counts.get("errors_not_stored", 0)
        if not more:
            return ""
        return gettext("… and %(more)s more not stored: a job keeps its first %(stored)s (JOB_MAX_STORED_ERRORS)") % {
            "more": f"{more:,}", "stored": f"{self.errors.count():,}"}

    def scalar_counts(self):
        """The counts that are plain numbers, for the job page (nested ones have tables of their own)."""
        return [(key, value) for key, value in self.counts.items() if not isinstance(value, dict)]

    def lease_expired(self, now=None):
        now = now or timezone.now()
        return self.heartbeat_at is None or self.heartbeat_at < now - timedelta(seconds=settings.JOB_LEASE_SECONDS)


class JobError(models.Model):
    """A row or item a job could not process, with the place in the input and a reason a person understands."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="errors")
    line = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField()
    excerpt = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["line", "pk"]
        indexes = [models.Index(fields=["job", "line"], name="job_error_job_line")]


# Near-duplicate prompts and benchmark contamination (annotation/near_duplicates.py). Flags only:
# nothing here deletes or hides a prompt.


class PromptSignature(models.Model):
    """A prompt's MinHash signature over character n-grams of its normalised query, computed once
    so that a later import signs only its new prompts and a benchmark check reuses them."""

    prompt = models.OneToOneField(Prompt, primary_key=True, on_delete=models.CASCADE, related_name="signature")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    # The hashing scheme (n-gram size, permutations, seed); a signature of another scheme is recomputed.
    scheme = models.CharField(max_length=32)
    minhash = models.BinaryField()
    # Characters of the normalised query: which prompts the short-copy check looks at, read without
    # their texts (annotation/ingest/minhash.py, is_short_copy).
    normalised_length = models.PositiveIntegerField(db_default=0)

    class Meta:
        indexes = [models.Index(fields=["dataset", "scheme"], name="signature_dataset_scheme")]


class NearDuplicateGroup(models.Model):
    """Prompts of one dataset whose queries are near-duplicates of each other, flagged for review."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="near_duplicate_groups")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    threshold = models.FloatField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("near-duplicate group")
        verbose_name_plural = _("near-duplicate groups")
        ordering = ["-size", "pk"]


class NearDuplicateMember(models.Model):
    group = models.ForeignKey(NearDuplicateGroup, on_delete=models.CASCADE, related_name="members")
    # A prompt is in at most one group.
    prompt = models.OneToOneField(Prompt, on_delete=models.CASCADE, related_name="near_duplicate")
    # Jaccard similarity of character n-grams with the group's closest other member.
    similarity = models.FloatField()

    class Meta:
        ordering = ["group", "prompt"]


class ContaminationMatch(models.Model):
    """A training prompt that near-duplicates a prompt of a dataset marked as a benchmark."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="contamination_matches")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="contamination_matches")
    benchmark_prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("contamination match")
        verbose_name_plural = _("contamination matches")
        ordering = ["-similarity", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "benchmark_prompt"], name="contamination_unique")
        ]
        indexes = [models.Index(fields=["dataset", "prompt"], name="contamination_dataset_prompt")]


class RejudgeTarget(models.Model):
    """A pair a `pairwise_rejudge` job asks about. The selection (a list of up to every pair) is resolved
    once, when the job is made, into these rows: the job's params stay small at 1M pairs and it walks its
    pairs by keyset, whatever happens to the list afterwards."""

    # Indexed by the constraint below, which is also the job's keyset index (its pairs in id order).
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_index=False)
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "pair"], name="rejudge_target_unique")]


class PairwiseVerdict(models.Model):
    """A judge's pairwise verdict on a pair, asked in both orders (annotation/rejudging.py): the letter it
    chose with the chosen response as A, then as B, and the outcome. A re-run replaces it."""

    class Outcome(models.TextChoices):
        CHOSEN = "chosen", _("Prefers chosen")
        REJECTED = "rejected", _("Prefers rejected")
        # The letter stayed while the responses swapped places: the judge followed the position.
        INCONSISTENT = "inconsistent", _("Position-inconsistent")
        UNPARSEABLE = "unparseable", _("No verdict")

    # Copied from the pair: the "pairwise judge disagrees" list reads one index of its dataset.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+", db_index=False)
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="pairwise_verdicts", db_index=False)
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="+")
    # "A", "B", or "" when the answer held no single verdict.
    chosen_first = models.CharField(max_length=1, blank=True)
    chosen_second = models.CharField(max_length=1, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    # The answers, as JudgeCacheEntry keys (the pair page shows their text).
    chosen_first_key = models.UUIDField()
    chosen_second_key = models.UUIDField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "judge"], name="pairwise_verdict_unique")]
        indexes = [models.Index(fields=["dataset", "outcome", "pair"], name="pairwise_verdict_outcome")]

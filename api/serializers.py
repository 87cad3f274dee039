"""What the API answers, described for the OpenAPI schema (api/views.py builds the values)."""

from django.urls import reverse
from rest_framework import serializers

from annotation.models import Dataset, Job, Membership


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class DatasetSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "is_benchmark", "created_at", "role"]

    def get_role(self, dataset) -> str | None:
        return dataset.role_of(self.context["request"].user)


class DatasetCountsSerializer(DatasetSerializer):
    pairs_by_status = serializers.SerializerMethodField()
    by_domain = serializers.SerializerMethodField()

    class Meta(DatasetSerializer.Meta):
        fields = DatasetSerializer.Meta.fields + ["pairs_by_status", "by_domain"]

    def _counts(self, dataset):
        from review.views import dataset_counts

        if "counts" not in self.context:
            self.context["counts"] = dataset_counts(dataset)
        return self.context["counts"]

    def get_pairs_by_status(self, dataset) -> dict[str, int]:
        return {row["status"]: row["n"] for row in self._counts(dataset)["statuses"]}

    def get_by_domain(self, dataset) -> dict[str, dict[str, int]]:
        return {row["domain"]: {k: row[k] for k in ("prompts", "responses", "pairs")}
                for row in self._counts(dataset)["domains"]["rows"]}


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class JobSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    fraction = serializers.FloatField()
    eta_seconds = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "kind", "label", "dataset", "status", "unit", "total", "done", "fraction", "counts", "error",
                  "cancel_requested", "created_at", "started_at", "finished_at", "eta_seconds", "url"]

    def get_label(self, job) -> str:
        return str(job.kind_info.label) if job.kind_info else job.kind

    def get_eta_seconds(self, job) -> int | None:
        eta = job.eta()
        return int(eta.total_seconds()) if eta is not None else None

    def get_url(self, job) -> str:
        return self.context["request"].build_absolute_uri(reverse("api-job", args=[job.pk]))


class PairRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    domain = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    chosen_score = serializers.FloatField(allow_null=True)
    rejected_score = serializers.FloatField(allow_null=True)
    gap = serializers.FloatField(allow_null=True)
    suspicion = serializers.FloatField(allow_null=True)
    prompt_excerpt = serializers.CharField()
    chosen_excerpt = serializers.CharField()
    rejected_excerpt = serializers.CharField()


class PairPageSerializer(serializers.Serializer):
    results = PairRowSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="Pass as `after` for the next page; null on "
                                                                     "the last one.")
    next = serializers.CharField(allow_null=True, help_text="The next page's URL; null on the last one.")


class JudgementSerializer(serializers.Serializer):
    judge = serializers.CharField(source="judge.name")
    status = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    rubric_version = serializers.IntegerField(source="rubric.version", allow_null=True, default=None)
    analysis = serializers.CharField()
    created_at = serializers.DateTimeField()


class RewardSerializer(serializers.Serializer):
    model = serializers.CharField(source="reward_model.name")
    version = serializers.IntegerField(source="reward_model.version")
    model_id = serializers.IntegerField(source="reward_model_id")
    reward = serializers.FloatField()


class SideSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    text = serializers.CharField()
    judgements = JudgementSerializer(many=True)
    rewards = RewardSerializer(many=True)


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField(source="pair_id")
    reviewer = serializers.CharField(source="reviewer.username")
    verdict = serializers.CharField()
    better_correct = serializers.BooleanField(allow_null=True)
    prompt_ok = serializers.BooleanField(allow_null=True)
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PairwiseVerdictSerializer(serializers.Serializer):
    judge = serializers.CharField(source="judge.name")
    outcome = serializers.CharField()
    chosen_first = serializers.CharField()
    chosen_second = serializers.CharField()
    created_at = serializers.DateTimeField()


class PairDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.IntegerField()
    domain = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    origin = serializers.CharField()
    chosen_score = serializers.FloatField(allow_null=True)
    rejected_score = serializers.FloatField(allow_null=True)
    messages = serializers.ListField(child=serializers.DictField(), help_text="The prompt's turns: system, "
                                     "history and the query, as {role, content}.")
    chosen = SideSerializer()
    rejected = SideSerializer()
    rules = serializers.ListField(child=serializers.CharField(), help_text="The low-quality rules that select it.")
    suspicion = serializers.FloatField(allow_null=True)
    reviews = ReviewSerializer(many=True)
    pairwise_verdicts = PairwiseVerdictSerializer(many=True)


class RewardModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    backend = serializers.CharField()
    trained_on = serializers.IntegerField(source="trained_on_id", allow_null=True)
    metrics = serializers.DictField()
    created_at = serializers.DateTimeField()


class ExportFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField(required=False)
    split = serializers.CharField(allow_null=True, required=False)
    rows = serializers.IntegerField(allow_null=True, required=False)
    bytes = serializers.IntegerField(required=False)
    sha256 = serializers.CharField(required=False)
    url = serializers.CharField()


class ExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.IntegerField(source="dataset_id")
    format = serializers.CharField()
    job = JobSerializer(allow_null=True)
    files = serializers.SerializerMethodField()
    manifest = serializers.DictField()
    created_at = serializers.DateTimeField()

    def get_files(self, export) -> ExportFileSerializer(many=True):
        request = self.context["request"]
        return [{**f, "url": request.build_absolute_uri(reverse("api-export-file", args=[export.pk, f["name"]]))}
                for f in export.files]


class ShownResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class AssignmentSerializer(serializers.Serializer):
    pair = serializers.IntegerField(help_text="The pair handed to you; review it with POST …/reviews/.")
    queue = serializers.CharField(help_text="The queue it came from; send it back with the review.")
    blind = serializers.BooleanField(help_text="Whether A and B are in a random order (blind review).")
    messages = serializers.ListField(child=serializers.DictField())
    a = ShownResponseSerializer()
    b = ShownResponseSerializer()


class DecisionPreviewSerializer(serializers.Serializer):
    change = serializers.IntegerField(help_text="Pairs the decision would change")
    already = serializers.IntegerField(help_text="Pairs already in the target status")
    withdrawn = serializers.IntegerField(help_text="Withdrawn pairs, left alone")


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.IntegerField(source="dataset_id")
    action = serializers.CharField()
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    at = serializers.DateTimeField()
    reason = serializers.CharField()
    selection = serializers.CharField()
    changed = serializers.IntegerField()
    unchanged = serializers.DictField()
    undone_at = serializers.DateTimeField(allow_null=True)
    undone_by = serializers.CharField(source="undone_by.username", allow_null=True, default=None)
    restored = serializers.IntegerField()
    left = serializers.IntegerField()
    job = JobSerializer(allow_null=True)

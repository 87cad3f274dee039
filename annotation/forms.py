from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from .ingest.hub import parse_hub_id
from .ingest.importer import FORMAT_CHOICES
from .ingest.tabular import parse_columns
from .models import Domain
from .pairing import DEFAULT_MIN_JUDGES, DEFAULT_THRESHOLD, BuildParams, scored_judges

FORMAT_LABELS = {"auto": _("Detect"), "jsonl": _("JSONL container"), "json": _("JSON array container"),
                 "csv": _("CSV container"), "parquet": _("Parquet container"), "argilla": _("Argilla export"),
                 "labelstudio": _("Label Studio pairwise export"), "ultrafeedback": _("UltraFeedback (raw)"),
                 "hh-rlhf": _("HH-RLHF transcripts")}


def too_large_message():
    return _("The file is larger than the %(limit)s limit.") % {
        "limit": filesizeformat(settings.IMPORT_MAX_UPLOAD_BYTES)}


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("File (JSONL, JSON array, CSV or Parquet; JSONL/JSON/CSV optionally .gz or .zst)"), required=False)
    hub = forms.CharField(
        label=_("…or a Hugging Face dataset"), required=False, max_length=200,
        help_text=_("A dataset id such as m-a-p/COIG-P; its Parquet files are downloaded and imported."),
    )
    split = forms.CharField(label=_("Split"), initial="train", max_length=100, required=False)
    limit = forms.IntegerField(label=_("At most this many rows"), min_value=1, required=False)
    format = forms.ChoiceField(choices=[(f, FORMAT_LABELS.get(f, f)) for f in FORMAT_CHOICES], initial="auto",
                               label=_("Format"))
    columns = forms.CharField(
        label=_("Column mapping (CSV, Parquet)"), required=False, max_length=1000,
        help_text=_("FIELD=COLUMN pairs, e.g. prompt=question,chosen=good,rejected=bad,domain=category. "
                    "Not needed when the columns already have these names."),
    )
    domain = forms.ChoiceField(
        choices=[("", _("From the file"))] + list(Domain.choices),
        required=False, label=_("Domain"),
        help_text=_("Sets the domain of every row, for files without one."),
    )

    def __init__(self, *args, upload_too_large=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.upload_too_large = upload_too_large

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if self.upload_too_large or upload is not None and upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(too_large_message())
        return upload

    def clean_hub(self):
        text = self.cleaned_data["hub"].strip()
        if text:
            try:
                return parse_hub_id(text)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return ""

    def clean_columns(self):
        try:
            return parse_columns(self.cleaned_data["columns"]) and self.cleaned_data["columns"]
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("hub")) and not self.errors:
            raise forms.ValidationError(_("Upload a file or name a Hugging Face dataset (one of the two)."))
        if data.get("hub") and data.get("format") in ("jsonl", "json", "csv"):
            self.add_error("format", _("A Hugging Face dataset is read as Parquet."))
        return data


class BuildPairsForm(forms.Form):
    judges = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label=_("Judges"),
        help_text=_("None ticked: every judge with scores."),
    )
    aggregate = forms.ChoiceField(choices=[("mean", _("Mean")), ("median", _("Median"))], initial="mean",
                                  label=_("Aggregate"))
    normalise = forms.ChoiceField(
        choices=[("none", _("None")), ("zscore", _("z-score per judge"))], initial="none", label=_("Normalise"),
        help_text=_("z-score: each judge's scores are standardised, then put back on the pooled 1-10 scale."),
    )
    min_judges = forms.IntegerField(min_value=1, initial=DEFAULT_MIN_JUDGES, label=_("Minimum judges per response"))
    threshold = forms.FloatField(
        min_value=0, initial=DEFAULT_THRESHOLD, label=_("Threshold"),
        help_text=_("A pair needs a gap strictly greater than this."),
    )
    strategy = forms.ChoiceField(
        choices=[("all", _("All qualifying pairs")), ("random", _("k random pairs per prompt")),
                 ("best-worst", _("Best versus worst"))],
        initial="all", label=_("Strategy"),
    )
    k = forms.IntegerField(min_value=1, initial=1, label=_("k (random strategy)"))
    seed = forms.IntegerField(initial=0, label=_("Seed"))
    max_pairs_per_prompt = forms.IntegerField(min_value=1, required=False, label=_("At most pairs per prompt"))
    domains = forms.MultipleChoiceField(
        choices=Domain.choices, required=False, widget=forms.CheckboxSelectMultiple, label=_("Domains"),
        help_text=_("None ticked: every domain."),
    )

    def __init__(self, *args, judge_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judges"].choices = [(name, name) for name in judge_names]

    @classmethod
    def for_dataset(cls, dataset, data=None):
        """The form offering the judges that scored responses of `dataset`."""
        return cls(data, judge_names=list(scored_judges(dataset).values_list("name", flat=True)))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["params"] = BuildParams(
                judges=tuple(data["judges"]), aggregate=data["aggregate"], normalise=data["normalise"],
                min_judges=data["min_judges"], threshold=data["threshold"], strategy=data["strategy"], k=data["k"],
                seed=data["seed"], max_pairs_per_prompt=data["max_pairs_per_prompt"], domains=tuple(data["domains"]),
            )
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        if data["min_judges"] > len(data["judges"] or self.fields["judges"].choices):
            raise forms.ValidationError(
                _("Minimum judges is %(n)d but only %(m)d judge(s) are selected.")
                % {"n": data["min_judges"], "m": len(data["judges"] or self.fields["judges"].choices)}
            )
        return data


class ScoreForm(forms.Form):
    """What to score and how: the same fields on the dataset page and in the admin actions."""

    judges = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label=_("Judges"),
        help_text=_("Judges with an API (base URL and model id); judges of imported scores are not listed."),
    )
    domains = forms.MultipleChoiceField(
        choices=Domain.choices, required=False, widget=forms.CheckboxSelectMultiple, label=_("Domains"),
        help_text=_("None ticked: every domain."),
    )
    pair_statuses = forms.MultipleChoiceField(
        choices=(), required=False, widget=forms.CheckboxSelectMultiple, label=_("Only responses in pairs that are"),
    )
    rubric_version = forms.IntegerField(
        min_value=1, required=False, label=_("Rubric version"), help_text=_("Blank: each domain's latest version."),
    )
    rescore = forms.BooleanField(
        required=False, label=_("Rescore"),
        help_text=_("Score again what this judge and rubric version already scored (answers come from the cache)."),
    )
    force = forms.BooleanField(
        required=False, label=_("Bypass the cache"), help_text=_("Send every request again, and pay for it."),
    )

    def __init__(self, *args, **kwargs):
        from .models import Judge, Pair

        super().__init__(*args, **kwargs)
        self.fields["judges"].queryset = Judge.objects.filter(is_active=True).exclude(base_url="").exclude(model="")
        self.fields["pair_statuses"].choices = Pair.Status.choices

    def clean_rubric_version(self):
        from .models import Rubric

        version = self.cleaned_data["rubric_version"]
        if version and not Rubric.objects.filter(version=version).exists():
            raise forms.ValidationError(_("No rubric has version %(v)s.") % {"v": version})
        return version

    def options(self):
        data = self.cleaned_data
        return {
            "judges": list(data["judges"]), "domains": data["domains"] or None,
            "pair_statuses": data["pair_statuses"], "rubric_version": data["rubric_version"],
            "rescore": data["rescore"], "force": data["force"],
        }


class JobFilter(forms.Form):
    """The jobs list's filters: a dataset (of those the user sees), a kind, an outcome."""

    dataset = forms.ModelChoiceField(queryset=None, required=False, label=_("Dataset"), empty_label=_("Any"))
    kind = forms.ChoiceField(choices=(), required=False, label=_("Kind"))
    status = forms.ChoiceField(choices=(), required=False, label=_("Outcome"))

    def __init__(self, data=None, *, datasets, **kwargs):
        from .jobs import KINDS
        from .models import Job

        super().__init__(data, **kwargs)
        self.fields["dataset"].queryset = datasets.order_by("name")
        self.fields["kind"].choices = [("", _("Any"))] + sorted(((k, v.label) for k, v in KINDS.items()),
                                                                key=lambda kv: str(kv[1]))
        self.fields["status"].choices = [("", _("Any"))] + list(Job.Status.choices)

    def narrow(self, jobs):
        data = self.cleaned_data
        if data.get("dataset"):
            jobs = jobs.filter(dataset=data["dataset"])
        if data.get("kind"):
            jobs = jobs.filter(kind=data["kind"])
        if data.get("status"):
            jobs = jobs.filter(status=data["status"])
        return jobs

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from annotation.models import Dataset, Domain, Role

from .exports import Selection
from .exports import formats as export_formats
from .models import ReviewSettings


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name", "description", "is_benchmark"]
        labels = {"name": _("Name"), "description": _("Description"), "is_benchmark": _("Is benchmark")}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("A dataset needs a name."))
        return name


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, label=_("Username"))
    role = forms.ChoiceField(choices=Role.choices, label=_("Role"))

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise forms.ValidationError(_("No user is called %(name)s.") % {"name": username}) from None


class ExportForm(forms.Form):
    """What to export; the workflow (review/exports/) checks the values again."""

    # Read from the registry each time the form is made, so every registered format is offered.
    format = forms.ChoiceField(choices=export_formats.choices, initial="sharegpt", label=_("Format"))
    statuses = forms.MultipleChoiceField(
        choices=[("pending", _("Pending")), ("kept", _("Kept")), ("filtered", _("Filtered")),
                 ("all", _("All pairs, no exclusions"))],
        initial=["pending", "kept"], widget=forms.CheckboxSelectMultiple, label=_("Statuses"),
        help_text=_("Pairs reviewers marked both bad or incorrect are left out unless 'all' is ticked."),
    )
    domains = forms.MultipleChoiceField(
        choices=Domain.choices, required=False, widget=forms.CheckboxSelectMultiple, label=_("Domains"),
        help_text=_("None ticked: every domain."),
    )
    min_gap = forms.FloatField(required=False, label=_("Minimum panel gap"))
    split = forms.FloatField(required=False, min_value=0.01, max_value=0.99, label=_("Train fraction"),
                             help_text=_("e.g. 0.95 for a train/test split by prompt; empty for one file."))
    seed = forms.IntegerField(initial=0, required=False, label=_("Seed"))
    limit = forms.IntegerField(required=False, min_value=1, label=_("At most this many rows"))
    with_meta = forms.BooleanField(required=False, label=_("Metadata columns"))
    bom = forms.BooleanField(required=False, label=_("CSV: byte-order mark for Excel"))
    raw_csv = forms.BooleanField(
        required=False, label=_("Raw CSV cells: for machine consumers, not spreadsheets"),
        help_text=_("Unticked, a cell starting with = + - @, a tab or a carriage return gets a leading ' so that "
                    "spreadsheets do not run it as a formula; the dataset card says how to undo it."),
    )

    def selection(self):
        data = self.cleaned_data
        return Selection(statuses=data["statuses"], domains=data["domains"], min_gap=data["min_gap"],
                         split=data["split"], seed=data["seed"] or 0, limit=data["limit"],
                         with_meta=data["with_meta"], bom=data["bom"], raw_csv=data["raw_csv"])


class VerdictForm(forms.Form):
    """One review from the queue, in the A/B terms the reviewer saw; the view maps it to chosen/rejected."""

    pair = forms.IntegerField(widget=forms.HiddenInput)
    queue = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    verdict = forms.ChoiceField(choices=[("a", _("A is better")), ("b", _("B is better")), ("tie", _("Tie")),
                                         ("both_bad", _("Both bad"))], widget=forms.RadioSelect,
                                error_messages={"required": _("Choose a verdict (keys 1-4).")})
    better_correct = forms.BooleanField(required=False, label=_("The better response is correct"))
    prompt_ok = forms.BooleanField(required=False, label=_("The prompt is well-formed and not sensitive"))
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class QueueActionForm(forms.Form):
    """Skip or undo: which pair (for skip) and which queue."""

    pair = forms.IntegerField(required=False, widget=forms.HiddenInput)
    queue = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)


class ReviewSettingsForm(forms.ModelForm):
    class Meta:
        model = ReviewSettings
        fields = ["reviews_per_pair", "blind_review"]
        labels = {"reviews_per_pair": _("Reviewers per pair"), "blind_review": _("Blind review")}


class AuditForm(forms.Form):
    label = forms.CharField(required=False, max_length=200, label=_("Label"),
                            help_text=_("e.g. the dataset version this audit checks"))
    n_per_domain = forms.IntegerField(min_value=1, max_value=10_000, initial=40, label=_("Pairs per domain"))
    reviews_per_pair = forms.IntegerField(min_value=1, max_value=10, initial=2, label=_("Reviewers per pair"))
    seed = forms.IntegerField(initial=0, label=_("Seed"))
    query = forms.CharField(required=False, max_length=500, initial="status=pending&status=kept",
                            label=_("Draw from the list"),
                            help_text=_("Pair list parameters, as in a list's URL (empty: every pair)."))

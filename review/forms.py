from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from annotation.models import Dataset, Domain, Pair, Role

from .exports import ExportError, Selection
from .exports.selection import check_license
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
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER, label=_("Role"))

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise forms.ValidationError(_("No user is called %(name)s.") % {"name": username}) from None


class UserSearchForm(forms.Form):
    q = forms.CharField(min_length=2, max_length=150, strip=True, label=_("Find a user by name"))


class NewMemberForm(forms.Form):
    """A new account that joins this dataset as a reviewer or viewer: what a dataset admin may create."""

    username = forms.CharField(max_length=150, label=_("Username"),
                               validators=[UnicodeUsernameValidator()],
                               help_text=_("Letters, digits and @ . + - _ only."))
    name = forms.CharField(max_length=150, required=False, label=_("Full name"))
    email = forms.EmailField(required=False, label=_("Email"))
    role = forms.ChoiceField(choices=[(Role.REVIEWER, Role.REVIEWER.label), (Role.VIEWER, Role.VIEWER.label)],
                             initial=Role.REVIEWER, label=_("Role"))

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("A user called %(name)s exists already: add them above.")
                                        % {"name": username})
        return username


class ExportForm(forms.Form):
    """What to export; the workflow (review/exports/) checks the values again."""

    # Read from the registry each time the form is made, so every registered format is offered.
    format = forms.ChoiceField(choices=export_formats.choices, initial="sharegpt", label=_("Format"))
    statuses = forms.MultipleChoiceField(
        choices=[("pending", _("Pending")), ("kept", _("Kept")), ("swapped", _("Swapped")),
                 ("filtered", _("Filtered")), ("all", _("All pairs, no exclusions"))],
        initial=["pending", "kept", "swapped"], widget=forms.CheckboxSelectMultiple, label=_("Statuses"),
        help_text=_("Pairs reviewers marked both bad or incorrect are left out unless 'all' is ticked or an admin "
                    "decided the pair; swapped pairs are written with chosen and rejected exchanged."),
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

    license = forms.CharField(
        initial="unknown", required=False, max_length=100, label=_("License"),
        help_text=_("Hugging Face license identifier written into the dataset card, e.g. cc-by-nc-4.0 or apache-2.0; "
                    "unknown until it is settled."),
    )

    def clean_license(self):
        try:
            return check_license(self.cleaned_data["license"] or "unknown")
        except ExportError:
            raise forms.ValidationError(_("Give a Hugging Face license identifier such as cc-by-nc-4.0, apache-2.0 "
                                          "or unknown; 'other' needs a license name and link.")) from None

    def format_help(self):
        """(label, what it is for) of every format, shown under the form."""
        return [(fmt.label, fmt.help) for fmt in export_formats.FORMATS.values() if fmt.help]

    def selection(self):
        data = self.cleaned_data
        return Selection(statuses=data["statuses"], domains=data["domains"], min_gap=data["min_gap"],
                         split=data["split"], seed=data["seed"] or 0, limit=data["limit"],
                         with_meta=data["with_meta"], bom=data["bom"], raw_csv=data["raw_csv"],
                         license=data["license"])


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
        fields = ["reviews_per_pair", "blind_review", "status_quorum"]
        labels = {"reviews_per_pair": _("Reviewers per pair"), "blind_review": _("Blind review")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status_quorum"].required = False  # left empty: reviews do not decide statuses

    def clean_status_quorum(self):
        return self.cleaned_data.get("status_quorum") or 0


class AuditForm(forms.Form):
    """An audit sample: how many pairs per domain, drawn from which pairs (a view, domains, statuses:
    the pair list's own parameters, chosen here rather than typed as a query string)."""

    label = forms.CharField(required=False, max_length=200, label=_("Label"),
                            help_text=_("e.g. the dataset version this audit checks"))
    n_per_domain = forms.IntegerField(min_value=1, max_value=10_000, initial=40, label=_("Pairs per domain"))
    reviews_per_pair = forms.IntegerField(min_value=1, max_value=10, initial=2, label=_("Reviewers per pair"))
    seed = forms.IntegerField(initial=0, label=_("Seed"))
    view = forms.ChoiceField(choices=(), required=False, label=_("Selection"),
                             help_text=_("A disagreement view or low-quality rule at its default settings, or all pairs."))
    domain = forms.MultipleChoiceField(choices=Domain.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                       label=_("Domains"), help_text=_("None ticked: every domain."))
    status = forms.MultipleChoiceField(choices=Pair.Status.choices, required=False, initial=["pending", "kept", "swapped"],
                                       widget=forms.CheckboxSelectMultiple, label=_("Statuses"),
                                       help_text=_("By default the pairs an export takes: pending, kept and "
                                                   "swapped. None ticked: every status."))
    whole_strata = forms.BooleanField(
        required=False, label=_("Where a domain has fewer pairs than asked, take all of them"),
        help_text=_("Without this, a sample larger than a domain's pairs is refused and the form says which."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .selections import REGISTRY

        self.fields["view"].choices = [("", _("All pairs"))] + [(s.name, s.label) for s in REGISTRY.values()]

    def query(self):
        """The pair list's parameters, as stored on the audit and shown in its report."""
        data = self.cleaned_data
        params = ([("view", data["view"])] if data["view"] else []) + [("domain", d) for d in data["domain"]]
        return urlencode(params + [("status", s) for s in data["status"]])


class DecisionForm(forms.Form):
    """Keep, discard or swap the pairs of a list (`selection`: the list's query string, `pair=<id>` for one)."""

    action = forms.ChoiceField(choices=[("keep", _("Keep")), ("discard", _("Discard")),
                                        ("swap", _("Swap chosen and rejected"))],
                               widget=forms.RadioSelect, label=_("Decision"))
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label=_("Why"),
                             error_messages={"required": _("Say why: a decision needs a reason.")})
    selection = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    # Unset: the view shows what the decision would change and asks again; set: it decides.
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # Where to go afterwards: the pair page for a decision made there (a path of this site only).
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

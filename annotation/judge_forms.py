"""The forms of the judges' pages: a judge's settings, a rubric's next version, a preview's responses."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .judge_client import check_env_name
from .models import Dataset, Domain, Judge


class JudgeForm(forms.ModelForm):
    class Meta:
        model = Judge
        fields = ["name", "family", "provider", "base_url", "model", "api_key_env", "temperature", "max_tokens",
                  "timeout_s", "max_concurrency", "rpm_limit", "tpm_limit", "price_input_per_m",
                  "price_output_per_m", "is_active"]
        labels = {
            "name": _("Name"), "family": _("Family"), "provider": _("Provider"), "base_url": _("Base URL"),
            "model": _("Model id"), "api_key_env": _("API key variable"), "temperature": _("Temperature"),
            "max_tokens": _("Most tokens per answer"), "timeout_s": _("Seconds per request"),
            "max_concurrency": _("Requests in flight at most"), "rpm_limit": _("Requests per minute at most"),
            "tpm_limit": _("Tokens per minute at most"), "price_input_per_m": _("Price per 1M input tokens"),
            "price_output_per_m": _("Price per 1M output tokens"), "is_active": _("Active"),
        }
        help_texts = {
            "family": _("Model family, e.g. qwen or gpt: the judges page measures self-preference with it."),
            "base_url": _("e.g. https://api.deepseek.com/v1 (OpenAI-compatible) or https://api.anthropic.com/v1 "
                          "(Anthropic Messages). Blank for judges whose scores were imported."),
            "api_key_env": _("The NAME of the environment variable holding the key, never the key itself; it must "
                             "start with COIGP_JUDGE_KEY_ (or be allowed by the operator). Set it where the worker "
                             "runs: scoring jobs read it there."),
        }
        widgets = {"base_url": forms.URLInput(attrs={"size": 48}), "model": forms.TextInput(attrs={"size": 32})}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("A judge needs a name."))
        return name

    def clean_api_key_env(self):
        value = self.cleaned_data["api_key_env"].strip()
        try:
            return check_env_name(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_max_concurrency(self):
        value = self.cleaned_data["max_concurrency"]
        if value < 1:
            raise forms.ValidationError(_("At least one request must be allowed in flight."))
        return value

    def clean(self):
        data = super().clean()
        if bool(data.get("base_url")) != bool(data.get("model")):
            raise forms.ValidationError(_("A judge with an API needs both a base URL and a model id; a judge of "
                                          "imported scores has neither."))
        return data


class RubricForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 18}), label=_("Rubric text"), strip=False,
                           max_length=20_000)

    def __init__(self, *args, current="", **kwargs):
        super().__init__(*args, **kwargs)
        self.current = current

    def clean_text(self):
        text = self.cleaned_data["text"].replace("\r\n", "\n")
        if not text.strip():
            raise forms.ValidationError(_("A rubric cannot be empty."))
        if text == self.current:
            raise forms.ValidationError(_("The text is the same as the latest version; nothing to save."))
        if "[" not in text:
            raise forms.ValidationError(_("The rubric must ask for the overall score in square brackets, e.g. "
                                          "[7]: that is what the score parser reads."))
        return text


class PreviewForm(forms.Form):
    """Which responses a judge is tried on: the first five of a dataset the user administers."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none(), label=_("Dataset"))
    domain = forms.ChoiceField(choices=[("", _("Any domain"))] + list(Domain.choices), required=False,
                               label=_("Domain"))

    def __init__(self, *args, datasets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = datasets if datasets is not None else Dataset.objects.none()

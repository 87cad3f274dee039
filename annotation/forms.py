from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from .ingest.formats import FORMATS
from .models import Domain


class ImportForm(forms.Form):
    file = forms.FileField(label=_("File (JSONL, optionally .gz or .zst)"))
    format = forms.ChoiceField(choices=[("auto", _("Detect"))] + [(f, f) for f in FORMATS], initial="auto")
    domain = forms.ChoiceField(
        choices=[("", _("From the file"))] + list(Domain.choices),
        required=False,
        help_text=_("Sets the domain of every row, for files without one."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s; the limit is %(limit)s.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(settings.IMPORT_MAX_UPLOAD_BYTES)}
            )
        return upload

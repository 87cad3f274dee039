"""The API tokens page: a user makes tokens (each secret shown once), sees when each was last used, and
revokes them. Only the user's own tokens are listed or revoked."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from . import tokens
from .models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=gettext_lazy("Name"),
                           help_text=gettext_lazy("What the token is for, e.g. the generation pipeline."))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("A token needs a name."))
        return name


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        _token, secret = tokens.create_token(request.user, form.cleaned_data["name"])
        form = TokenForm()
    rows = ApiToken.objects.filter(user=request.user)
    status = 400 if form.errors else 200
    # The secret is in this one response only: not in a message, a redirect or a log.
    response = render(request, "api/tokens.html", {"tokens": rows, "form": form, "secret": secret}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.revoke(token)
    messages.success(request, _("Token %(name)s is revoked.") % {"name": token.name})
    return redirect("api-tokens")

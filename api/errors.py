"""Errors as JSON: `{"detail": …}`, plus `errors` (field → messages) when input was refused. Input is checked
by the same Django forms the pages use, so a rule about a field holds on both."""

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler as drf_exception_handler


class FormInvalid(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The input is invalid.")
    default_code = "invalid"

    def __init__(self, form):
        super().__init__()
        self.errors = {name: [str(message) for message in messages] for name, messages in form.errors.items()}

    @classmethod
    def of(cls, field, message):
        """The error of one field (or "__all__") that no form checks."""
        from django import forms

        form = forms.Form()
        form._errors = {field: form.error_class([message])}
        return cls(form)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, FormInvalid):
        response.data = {"detail": str(exc.detail), "errors": exc.errors}
    return response

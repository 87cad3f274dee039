"""The OpenAPI description of a Django form's fields, as a DRF serializer made from the form. Only the schema
reads these serializers: input is validated by the form itself (api/views.py), so the two cannot drift."""

from django import forms
from rest_framework import serializers

_SIMPLE = {
    forms.BooleanField: serializers.BooleanField,
    forms.IntegerField: serializers.IntegerField,
    forms.FloatField: serializers.FloatField,
    forms.FileField: serializers.FileField,
}


def _field(field, name):
    # A field left out takes the form's initial value (api/views.py, _form), so only those without one are required.
    kwargs = {"required": field.required and field.initial is None and not isinstance(field, forms.BooleanField),
              "help_text": str(field.help_text or field.label or name)}
    if isinstance(field, forms.ModelMultipleChoiceField):
        return serializers.ListField(child=serializers.IntegerField(), **kwargs)
    if isinstance(field, forms.ModelChoiceField):
        if field.to_field_name:
            return serializers.CharField(**kwargs)
        return serializers.IntegerField(**kwargs)
    if isinstance(field, forms.MultipleChoiceField):
        choices = [str(c) for c, _l in field.choices]
        child = serializers.ChoiceField(choices=choices) if choices else serializers.CharField()
        return serializers.ListField(child=child, **kwargs)
    if isinstance(field, forms.ChoiceField) and list(field.choices):
        return serializers.ChoiceField(choices=[str(c) for c, _l in field.choices], allow_blank=not field.required,
                                       **kwargs)
    for form_class, serializer_class in _SIMPLE.items():
        if isinstance(field, form_class):
            if isinstance(field, (forms.IntegerField, forms.FloatField)):
                kwargs.update(min_value=field.min_value, max_value=field.max_value, allow_null=not field.required)
            return serializer_class(**kwargs)
    return serializers.CharField(max_length=getattr(field, "max_length", None), allow_blank=not field.required,
                                 **kwargs)


def form_serializer(name, make_form, exclude=(), extra=None):
    """A serializer class called `name` with a field for each field of the form `make_form()` returns."""
    form = make_form()
    attrs = {n: _field(f, n) for n, f in form.fields.items() if n not in exclude}
    attrs.update(extra or {})
    return type(name, (serializers.Serializer,), attrs)

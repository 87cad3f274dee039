"""`{% load rendering %}{{ text|markdown }}`: untrusted text as sanitised HTML (review/rendering.py)."""

from django import template

from review.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return render_markdown(text)

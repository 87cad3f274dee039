from django import template

register = template.Library()


@register.filter
def duration(value):
    """A timedelta as 1h 02m 03s / 2m 03s / 3s."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


@register.filter
def review_url(list_url):
    """The review queue over exactly the pairs of a pair list: its URL (`/datasets/<id>/pairs/?…`) with the
    queue's path and the same parameters, so every number that opens a list can also open its queue."""
    path, _sep, query = str(list_url).partition("?")
    if not path.endswith("/pairs/"):
        return ""
    return path[: -len("pairs/")] + "review/" + (f"?{query}" if query else "")


@register.filter
def highlight(text, query):
    """`text` escaped, with every case-insensitive occurrence of `query` in <mark> (the pair list's search)."""
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    text = "" if text is None else str(text)
    if not query:
        return escape(text)
    folded, needle = text.lower(), str(query).lower()
    out, start = [], 0
    while needle and (found := folded.find(needle, start)) >= 0:
        out += [escape(text[start:found]), "<mark>", escape(text[found:found + len(needle)]), "</mark>"]
        start = found + len(needle)
    out.append(escape(text[start:]))
    return mark_safe("".join(out))


@register.filter
def verdict_label(verdict):
    """A review verdict in words (优选回答更好, Chosen is better) for its code; an unknown code as it is."""
    from review.models import Review

    return dict(Review.Verdict.choices).get(verdict, verdict)

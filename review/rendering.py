"""Untrusted text (prompts, model output, judge analyses, review notes) as safe HTML.

`render_markdown(text)` is the one way the pages turn such text into markup:

- Markdown by markdown-it-py in CommonMark mode plus tables, with raw HTML *disabled*: a `<script>`
  or `<img onerror=…>` in a response is shown as the text it is.
- Math is kept verbatim for KaTeX on the client (static/js/render.js): `$…$`, `$$…$$`, `\\(…\\)` and
  `\\[…\\]` are taken out before Markdown can read `_`, `*` or `\\` inside them as emphasis or escapes.
- Fenced code keeps `class="language-xxx"` for highlight.js.
- Images are rendered as links ("image: alt"), never loaded: a remote image would tell its host who
  reads the dataset, and the CSP (img-src 'self' data:) would block it anyway.
- Table alignment becomes a class (`align-right`), since the CSP forbids style attributes.
- Nesting is capped (MAX_NESTING): text nested deeper, in blocks (thousands of ">" or "-") or inline
  (emphasis inside emphasis), is shown as its source, wrapped, in a `<pre class="source">`.
- The result goes through nh3 (ammonia) allowing only the tags and attributes this Markdown makes;
  links only to http, https and mailto, with rel="nofollow noopener". markdown-it already refuses
  `javascript:` links; nh3 is the second lock on the same door.
"""

import re

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li", "pre", "code",
    "em", "strong", "a", "table", "thead", "tbody", "tr", "th", "td", "span",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "ol": {"start"},
    "code": {"class"},
    "th": {"class"},
    "td": {"class"},
    "span": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_ALLOWED_CLASS = {
    "code": re.compile(r"language-[\w+#.-]{1,40}"),
    "th": re.compile(r"align-(left|right|center)"),
    "td": re.compile(r"align-(left|right|center)"),
    "span": re.compile(r"math"),
    "a": re.compile(r"md-image"),
}

# Levels of nesting, blocks and inline markup together, that Markdown renders: real text nests a few levels
# (a list in a list in a quote); each level indents and deepens the page's tree, so deeper text is shown as
# its source. markdown-it stops blocks at this level (maxNesting) but nests emphasis without limit.
MAX_NESTING = 20

# Opening and closing delimiters, longest first so "$$" wins over "$".
_MATH_DELIMITERS = [("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")]


def _math_inline(state, silent):
    src, start = state.src, state.pos
    for opener, closer in _MATH_DELIMITERS:
        if not src.startswith(opener, start):
            continue
        body_start = start + len(opener)
        end = src.find(closer, body_start)
        if end <= body_start:
            return False
        body = src[body_start:end]
        if "\n\n" in body:
            return False
        if opener == "$":
            # Pandoc's rule, so that "costs $5 and $10" stays text: no space just inside the
            # delimiters, and no digit right after the closing one.
            if body[0].isspace() or body[-1].isspace() or src[end + 1:end + 2].isdigit():
                return False
        if not silent:
            token = state.push("math", "", 0)
            token.content = src[start:end + len(closer)]
        state.pos = end + len(closer)
        return True
    return False


def _render_math(self, tokens, idx, options, env):
    # Verbatim and escaped: static/js/render.js gives the text content to KaTeX, so "<" stays "<".
    return f'<span class="math">{escapeHtml(tokens[idx].content)}</span>'


def _render_image(self, tokens, idx, options, env):
    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    return f'<a class="md-image" href="{escapeHtml(src)}">{escapeHtml("🖼 " + alt)}</a>'


def _alignment_to_class(state):
    for token in state.tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrGet("style") or ""
            match = re.fullmatch(r"text-align:(left|right|center)", style)
            token.attrs.pop("style", None)
            if match:
                token.attrSet("class", f"align-{match.group(1)}")


def _build():
    md = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING}).enable("table")
    md.inline.ruler.before("escape", "math", _math_inline)
    md.core.ruler.push("table_align_class", _alignment_to_class)
    md.add_render_rule("math", _render_math)
    md.add_render_rule("image", _render_image)
    return md


_MD = _build()


def _attribute_filter(tag, attribute, value):
    if attribute != "class":
        return value
    pattern = _ALLOWED_CLASS.get(tag)
    kept = [c for c in value.split() if pattern and pattern.fullmatch(c)]
    return " ".join(kept) or None


def sanitise(html):
    return nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, attribute_filter=_attribute_filter,
        url_schemes=URL_SCHEMES, link_rel="nofollow noopener",
    )


def render_markdown(text) -> SafeString:
    """Markdown → sanitised HTML; None or "" gives ""."""
    if not text:
        return mark_safe("")
    text = str(text)
    env = {}
    tokens = _MD.parse(text, env)
    if _deepest_level(tokens) >= MAX_NESTING - 1:
        # markdown-it stops at its nesting limit and drops what is deeper (thousands of ">" or "-"):
        # show such text as it is rather than lose part of it.
        return mark_safe(f'<pre class="source">{escape(text)}</pre>')
    return mark_safe(sanitise(_MD.renderer.render(tokens, _MD.options, env)))


def _deepest_level(tokens):
    """The deepest nesting in parsed text: a block's level plus that of the inline markup inside it."""
    return max((token.level + max((child.level for child in token.children or ()), default=0) for token in tokens),
               default=0)

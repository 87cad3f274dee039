"""render_markdown: Markdown to sanitised HTML, with math left for KaTeX and code for highlight.js."""

from html.parser import HTMLParser

import pytest
from django.template import Context, Template

from review.rendering import render_markdown


class Tags(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.tags = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html):
    return Tags(str(html)).tags


def test_inline_and_display_math_is_kept_verbatim_for_katex():
    html = render_markdown("欧拉：$e^{i\\pi}+1=0$，且 $a_1 * b_2 * c_3$。\n\n$$\n\\sum_{i=1}^n x_i\n$$")
    assert "$e^{i\\pi}+1=0$" in html
    # Without protection the underscores and asterisks would become <em>.
    assert "$a_1 * b_2 * c_3$" in html and "<em>" not in html
    assert "$$\n\\sum_{i=1}^n x_i\n$$" in html


def test_bracket_delimiters_survive_markdown_escapes_and_comparisons_are_escaped():
    html = render_markdown("\\(a_b_c\\) and \\[x<y\\]")
    assert "\\(a_b_c\\)" in html
    assert "\\[x&lt;y\\]" in html


def test_dollar_amounts_are_not_math():
    html = render_markdown("It costs $5 and $10.")
    assert 'class="math"' not in html and "$5 and $10" in html


def test_math_inside_code_stays_code():
    html = render_markdown("`$x_1$`")
    assert "<code>$x_1$</code>" in html
    assert 'class="math"' not in html


def test_fenced_code_gets_its_language_class():
    html = render_markdown("```python\nprint('你好')\n```")
    assert ("code", {"class": "language-python"}) in tags(html)
    assert "你好" in html


def test_raw_html_is_shown_as_text():
    html = render_markdown("<script>alert(1)</script> <img src=x onerror=alert(1)> <b>bold</b>")
    assert [t for t, _ in tags(html)] == ["p"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_javascript_links_are_not_links_and_others_get_nofollow():
    html = render_markdown("[x](javascript:alert(1)) [d](data:text/html,hi) [ok](https://example.com/a) "
                           "[mail](mailto:a@example.com)")
    links = [attrs for tag, attrs in tags(html) if tag == "a"]
    assert [a["href"] for a in links] == ["https://example.com/a", "mailto:a@example.com"]
    assert all(a["rel"] == "nofollow noopener" for a in links)
    assert "javascript:" not in "".join(a["href"] for a in links)


def test_obfuscated_javascript_scheme_is_refused_too():
    html = render_markdown("[x](JaVaScRiPt:alert(1)) [y](java&#x09;script:alert(1)) [z](%6Aavascript:alert(1))")
    for tag, attrs in tags(html):
        assert not attrs.get("href", "").lower().replace("\t", "").startswith("javascript")


def test_images_become_links_and_are_never_loaded():
    html = render_markdown("![图](http://tracker.example/p.png)")
    assert all(tag != "img" for tag, _ in tags(html))
    link = {"class": "md-image", "href": "http://tracker.example/p.png", "rel": "nofollow noopener"}
    assert ("a", link) in tags(html)


def test_tables_render_with_alignment_as_classes_not_styles():
    html = render_markdown("| 名称 | 数量 |\n|:--|--:|\n| 苹果 | 3 |")
    found = tags(html)
    assert ("table", {}) in found
    assert ("td", {"class": "align-right"}) in found
    assert all("style" not in attrs for _, attrs in found)


def test_the_template_filter_renders_and_marks_safe():
    out = Template("{% load rendering %}{{ text|markdown }}").render(Context({"text": "**粗体** <i>x</i>"}))
    assert "<strong>粗体</strong>" in out and "&lt;i&gt;x&lt;/i&gt;" in out


def test_empty_text_renders_as_nothing():
    assert render_markdown("") == "" and render_markdown(None) == ""


@pytest.mark.parametrize("text", [
    ">" * 5000 + " deep <script>",
    "> " * 5000 + "deep <script>",
    "- " * 5000 + "deep <script>",
    "1. " * 3000 + "deep <script>",
    "\n".join("  " * i + "- item" for i in range(40)) + " deep <script>",
    "> - " * 2000 + "deep <script>",
])
def test_nesting_beyond_the_limit_is_shown_as_its_source_not_lost(text):
    html = render_markdown(text)
    assert html.startswith('<pre class="source">') and "deep &lt;script&gt;" in html
    assert [tag for tag, _ in tags(html)] == ["pre"]


def test_inline_markup_nested_beyond_the_limit_is_shown_as_its_source_too():
    # markdown-it caps block nesting only: 5,000 emphasis levels would be 5,000 nested elements.
    text = "*a " * 5000 + "deep" + " a*" * 5000
    html = render_markdown(text)
    assert html.startswith('<pre class="source">') and "<em>" not in html and "deep" in html


def test_ordinary_nesting_renders():
    assert html_tags("> > > 三层引用").count("blockquote") == 3
    assert html_tags("- 一\n  - 二\n    - 三").count("ul") == 3
    assert html_tags("***粗斜体*** 和 *斜体 **加粗** 斜体*") == ["p", "em", "strong", "em", "strong"]


def html_tags(text):
    return [tag for tag, _ in tags(render_markdown(text))]

"""In headless Chromium: the pair page renders Markdown, highlighted code (highlight.js) and formulas
(KaTeX) under the Content-Security-Policy, shows Chinese text, and keeps hostile text inert."""

import pytest
from playwright.sync_api import expect

from .conftest import TEST_OUTPUT
from .helpers import Team, log_in
from .pair_data import make_pair

pytestmark = pytest.mark.browser

CHOSEN = """## 解答

设 $f(x) = x^2$，则
$$
\\int_0^1 f(x)\\,dx = \\frac{1}{3}
$$

```python
def area(n):
    return sum((i / n) ** 2 for i in range(n)) / n
```

| 方法 | 结果 |
|:--|--:|
| 积分 | 1/3 |

<script>document.title = "pwned"</script> <img src=x onerror="document.title='pwned'"> [点我](javascript:alert(1))
"""


def test_the_pair_page_renders_markdown_code_and_formulas(live_server, browser_page):
    team = Team.create("配对页面")
    pair = make_pair(team.dataset, "求 $\\int_0^1 x^2\\,dx$ 的值。", CHOSEN, "答案是 \\(\\frac{1}{2}\\)。" + "很长的文字。" * 400,
                     domain="math", system="你是一个严谨的数学老师。", chosen_score=9.0, rejected_score=2.0)
    page = browser_page
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}") or dialog.dismiss())
    log_in(page, live_server, team.viewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/{pair.pk}/")

    page.wait_for_selector("#chosen .md .katex")
    page.wait_for_selector("#chosen .md pre code.hljs")
    assert page.locator("#chosen .katex-display").count() == 1  # the $$…$$ block
    assert page.locator("#conversation .katex").count() >= 1  # the prompt's formula
    assert page.locator("#rejected .katex").count() == 1  # \\(…\\)
    assert page.locator("#chosen pre code.hljs .hljs-keyword").count() >= 1  # highlighted, not just classed
    assert page.locator("#chosen table td.align-right").inner_text() == "1/3"
    assert "严谨的数学老师" in page.locator("#conversation").inner_text()
    # Long texts scroll inside their box instead of stretching the page.
    box = page.locator("#rejected .md").evaluate("el => [el.scrollHeight, el.clientHeight]")
    assert box[0] > box[1]
    # Hostile text stayed text.
    assert page.title() != "pwned" and not [e for e in errors if e.startswith("dialog")]
    assert "<script>" in page.locator("#chosen .md").inner_text()
    assert page.locator("#chosen .md a[href^='javascript']").count() == 0
    # No admin actions for a viewer; no CSP violations reported by the browser.
    assert page.locator("#admin-actions").count() == 0
    assert not [e for e in errors if "Content Security Policy" in e], errors
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "pair-page.png"), full_page=True)


def test_the_pair_list_filters_with_htmx_and_opens_a_pair(live_server, browser_page):
    team = Team.create("配对列表")
    for i in range(60):
        make_pair(team.dataset, f"第{i}个问题：秋天" if i % 2 else f"第{i}个问题：春天", f"回答{i}", f"坏回答{i}",
                  domain="chat" if i % 3 else "math")
    page = browser_page
    log_in(page, live_server, team.admin)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/")
    assert page.locator("#pair-table tbody tr").count() == 50 and page.locator("#next-page").count() == 1
    page.fill("#id_q", "秋天")
    page.press("#id_q", "Enter")
    expect(page.locator("#pair-table tbody tr")).to_have_count(30)  # no eval: the CSP forbids it
    assert "q=" in page.url  # hx-push-url keeps the filter in the address
    assert page.locator("#next-page").count() == 0
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "pair-list.png"), full_page=True)
    page.locator("#pair-table tbody tr").first.locator("a").first.click()
    page.wait_for_selector("#conversation")
    assert "秋天" in page.locator("#conversation").inner_text()
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/quality/")
    page.wait_for_selector("#quality-rules")
    page.screenshot(path=str(TEST_OUTPUT / "quality-rules.png"), full_page=True)

"""In headless Chromium: hostile formulas and Markdown neither crash nor widen the pages that show them, and
ordinary long data (Chinese without spaces, long code lines and URLs) fits the pair list and the pair page
at common laptop widths."""

import pytest

from annotation.models import Judgement
from review.models import Review

from .conftest import TEST_OUTPUT
from .judged import judge
from .helpers import Team
from .pair_data import make_pair
from .test_browser_pair_page import log_in
from .test_browser_review import press_and_wait_for_another_pair, wait_for_keys

pytestmark = pytest.mark.browser

NESTED_SQRT = "\\sqrt{" * 200 + "x" + "}" * 200  # 1.4 KB that crashed the tab
# A shallow source that macros would nest 256 deep.
MACRO_NESTING = ("\\def\\a#1{\\sqrt{\\sqrt{\\sqrt{\\sqrt{#1}}}}}\\def\\b#1{\\a{\\a{\\a{\\a{#1}}}}}"
                 "\\def\\c#1{\\b{\\b{\\b{\\b{#1}}}}}\\c{\\c{x}}")
HOSTILE_MATH = f"""前文：欧拉公式 $e^{{i\\pi}}+1=0$ 照常显示。

嵌套：${NESTED_SQRT}$

$$
{NESTED_SQRT}
$$

宏：${MACRO_NESTING}$

宽：$\\rule{{100000em}}{{1em}}$ 和 $a\\kern{{100000em}}b$ 和 $a\\hspace{{100000em}}b$ 和 $x\\mkern{{900000mu}}y$

$$
\\rule{{100000em}}{{1em}}
$$

长：${"x+" * 2500}x$

价钱不是公式：它卖 $5 和 $10。

```python
print("后文仍然渲染")
```
"""

LONG_CHINESE = "这是一个没有任何空格的很长的中文段落用来检查页面在真实数据下是否会被撑宽" * 12
LONG_URL = "https://example.com/" + "/".join(f"segment-{i}-with-some-words" for i in range(40)) + "?q=" + "a" * 300
LONG_CODE = "result = compute(" + ", ".join(f"argument_number_{i}" for i in range(80)) + ")"
WIDE_TABLE = ("| " + " | ".join(f"列{i}" for i in range(16)) + " |\n|" + "---|" * 16 + "\n| "
              + " | ".join("很长的单元格内容没有空格" * 3 for _ in range(16)) + " |")


def long_real_like_text(i):
    return (f"第{i}个回答。{LONG_CHINESE}\n\n参见 {LONG_URL}\n\n```python\n{LONG_CODE}\n```\n\n{WIDE_TABLE}\n\n"
            f"公式 $\\sum_{{k=1}}^{{n}} k = \\frac{{n(n+1)}}{{2}}$，以及 {'非常长的词' * 60}。")


def page_widths(page):
    return page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def assert_fits(page, what):
    scroll_width, client_width = page_widths(page)
    assert scroll_width <= client_width, f"{what}: the page is {scroll_width}px wide in a {client_width}px window"


def watch_errors(page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("crash", lambda _: errors.append("the tab crashed"))
    return errors


def test_hostile_formulas_leave_the_pair_page_alive_narrow_and_rendered(live_server, browser_page):
    team = Team.create("恶意公式")
    pair = make_pair(team.dataset, f"求 ${NESTED_SQRT}$ 的值", HOSTILE_MATH, "普通回答 $\\frac{1}{2}$。")
    Judgement.objects.create(response=pair.chosen, judge=judge("公式评委"), score=7, status="ok",
                             analysis=f"分析：${NESTED_SQRT}$ 与 $\\rule{{100000em}}{{1em}}$")
    page = browser_page
    errors = watch_errors(page)
    log_in(page, live_server, team.viewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/{pair.pk}/")
    page.wait_for_selector("#rejected .md .katex")
    page.wait_for_selector("#chosen .md pre code.hljs")  # what follows the formulas still rendered

    assert page.evaluate("1 + 1") == 2 and errors == []
    chosen = page.locator("#chosen .md.tall")
    # The ordinary formula and the wide ones are rendered, the wide ones capped by maxSize.
    assert chosen.locator(".katex").count() == 6
    widest = chosen.evaluate("el => Math.max(...[...el.querySelectorAll('.katex .katex-base')].map("
                             "base => base.getBoundingClientRect().width / parseFloat(getComputedStyle(base).fontSize)))")
    assert 19 < widest < 22  # 100,000em asked for, maxSize's 20em given (plus the letters around a \\kern)
    # The nested, macro-built and over-long ones stay as their source, marked.
    refused = chosen.locator(".math-source")
    assert refused.count() == 4
    assert "\\sqrt{\\sqrt{" in refused.first.inner_text()
    assert refused.first.locator(".math-marker").inner_text() == "formula not rendered"
    assert refused.first.get_attribute("title") == "nested deeper than 20 levels"
    assert refused.nth(2).get_attribute("title") == "defines a macro"
    assert refused.nth(3).get_attribute("title") == "longer than 4000 characters"
    assert page.locator("#conversation .math-source").count() == 1
    assert "它卖 $5 和 $10。" in chosen.inner_text()  # what the server left as text stays text
    # The page still answers clicks: the judgement's analysis opens, with its formulas handled too.
    page.click("#chosen details summary")
    assert page.locator("#chosen details[open] .md.analysis .math-source").count() == 1
    assert page.locator("#chosen details[open] .md.analysis .katex").count() == 1
    assert_fits(page, "pair page with hostile formulas")
    page.screenshot(path=str(TEST_OUTPUT / "hostile-formulas-pair-page.png"), full_page=True)


def test_a_pair_with_hostile_formulas_does_not_stop_the_review_queue(live_server, browser_page):
    team = Team.create("恶意公式队列")
    for i in range(2):
        make_pair(team.dataset, f"第{i}题 ${NESTED_SQRT}$", HOSTILE_MATH, f"回答 ${NESTED_SQRT}$")
    page = browser_page
    errors = watch_errors(page)
    log_in(page, live_server, team.reviewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/review/")
    page.wait_for_selector("#review-item[data-state=fresh]")
    wait_for_keys(page)
    page.wait_for_selector("#review-item .math-source")
    assert_fits(page, "review queue with hostile formulas")
    page.screenshot(path=str(TEST_OUTPUT / "hostile-formulas-review-queue.png"), full_page=True)

    press_and_wait_for_another_pair(page, "1", "Enter")
    page.wait_for_selector("#review-item[data-state=fresh] .math-source")  # the swapped-in pair is handled too
    assert_fits(page, "review queue, second pair")
    press_and_wait_for_another_pair(page, "2", "Enter")
    assert page.locator("#review-item").get_attribute("data-state") == "empty"
    assert Review.objects.filter(reviewer=team.reviewer).count() == 2
    assert errors == []


def test_deep_markdown_and_wide_content_stay_inside_their_cards(live_server, browser_page):
    team = Team.create("深层嵌套")
    pair = make_pair(team.dataset, LONG_CHINESE, "> " * 5000 + "最深处", long_real_like_text(1))
    page = browser_page
    log_in(page, live_server, team.viewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/{pair.pk}/")
    page.wait_for_selector("#rejected .md pre code.hljs")
    assert_fits(page, "pair page with deep Markdown")

    # The nesting is shown as its wrapped source, not as 5,000 boxes and not as one endless line.
    source = page.locator("#chosen .md pre.source")
    assert "最深处" in source.inner_text() and page.locator("#chosen blockquote").count() == 0
    assert source.evaluate("el => el.scrollWidth <= el.clientWidth")
    # The long code line and the wide table scroll inside the card; the URL and words wrap.
    card = page.locator("#rejected").bounding_box()
    for selector in ("#rejected .md pre code", "#rejected .md table"):  # highlight.js makes <code> the scroller
        box = page.locator(selector)
        assert box.evaluate("el => el.scrollWidth > el.clientWidth"), f"{selector} scrolls"
        assert box.bounding_box()["x"] + box.bounding_box()["width"] <= card["x"] + card["width"], selector
    text = page.locator("#rejected .md.tall")
    assert text.evaluate("el => el.scrollWidth <= el.clientWidth")
    page.screenshot(path=str(TEST_OUTPUT / "deep-markdown-pair-page.png"), full_page=True)


@pytest.mark.parametrize("width", [1280, 1440])
def test_the_pair_list_and_the_pair_page_fit_the_window_with_long_real_like_data(live_server, browser_page, width):
    team = Team.create("长数据集名称" * 6)
    pairs = [make_pair(team.dataset, f"第{i}个问题：{LONG_CHINESE}{LONG_URL}", long_real_like_text(i),
                       f"{LONG_CODE} {LONG_CHINESE}", domain="code" if i % 2 else "math",
                       chosen_model="Qwen2.5-72B-Instruct-GPTQ-Int4-long-model-name-v2",
                       rejected_model="meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo-very-long-name",
                       status="filtered", status_reason="reward:" + "a-very-long-reward-model-name" * 4 + " was=pending",
                       chosen_score=8.5, rejected_score=3.25) for i in range(12)]
    pair = pairs[0]
    for side in (pair.chosen, pair.rejected):
        Judgement.objects.create(response=side, judge=judge("gpt-4o-2024-08-06-judge-with-a-long-name"), score=8,
                                 status="ok", analysis=long_real_like_text(99), input_tokens=123456,
                                 output_tokens=65432, cost=0.1234)
    Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="chosen_better", note=LONG_CHINESE + LONG_URL)
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, team.admin)

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/")
    assert page.locator("#pair-table tbody tr").count() == 12
    assert_fits(page, f"pair list at {width}px")
    table, card = page.locator("#pair-table").bounding_box(), page.locator("#pair-results").bounding_box()
    assert table["x"] + table["width"] <= card["x"] + card["width"]
    excerpt = page.locator(f"#pair-table tr[data-pair='{pair.pk}'] td.excerpt").nth(1)
    assert excerpt.get_attribute("title").startswith("第0个回答。这是一个")  # the cut text is in full on hover
    page.screenshot(path=str(TEST_OUTPUT / f"long-data-pair-list-{width}.png"), full_page=True)

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/{pair.pk}/")
    page.wait_for_selector("#chosen .md .katex")
    page.click("#chosen details summary")
    assert_fits(page, f"pair page at {width}px")
    chosen, rejected = page.locator("#chosen").bounding_box(), page.locator("#rejected").bounding_box()
    assert chosen["y"] == rejected["y"] and abs(chosen["width"] - rejected["width"]) < 2  # side by side, equal
    page.screenshot(path=str(TEST_OUTPUT / f"long-data-pair-page-{width}.png"), full_page=True)

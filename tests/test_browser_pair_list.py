"""In headless Chromium: the pair list's sort, count and pages (next, previous, jump) with the mouse and with
j/k and ]/[, the "?" list of keys, and no horizontal overflow at 1,280 px (screenshots in test-output/)."""

import re

import pytest

from review import pair_views
from annotation.models import Pair

from .conftest import TEST_OUTPUT
from .helpers import Team, log_in
from .pair_data import make_pair

pytestmark = pytest.mark.browser

PAGE = 5


def shown(page):
    return [int(x) for x in page.locator("#pair-table tbody tr[data-pair]").evaluate_all(
        "rows => rows.map(r => r.dataset.pair)")]


def first_row(page, pk):
    page.wait_for_selector(f"#pair-table tbody tr:first-child[data-pair='{pk}']")


def no_overflow(page):
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.fixture
def listed(transactional_db, monkeypatch):
    monkeypatch.setattr(pair_views, "PAGE_SIZE", PAGE)  # the live server runs in this process
    team = Team.create("配对列表")
    for i in range(12):
        make_pair(team.dataset, f"第{i}个问题：请解释递归" + "很长的文字" * 40, "好的回答" * 50, "差的回答" * 50,
                  domain="math" if i % 2 else "chat", chosen_score=5.0 + (i * 7) % 5, rejected_score=5.0)
    return team


def test_sorting_counting_and_paging_the_pair_list(live_server, browser_page, listed):
    page = browser_page
    log_in(page, live_server, listed.viewer)
    page.goto(f"{live_server.url}/datasets/{listed.dataset.pk}/pairs/")
    assert page.locator("#pair-count").inner_text().strip() == "12 pairs"
    assert page.locator("#pair-count").get_attribute("data-exact") == "true"

    page.select_option("#pair-filter select[name=order]", "gap")  # htmx swaps the results in
    page.wait_for_url(re.compile(r"order=gap"))
    by_gap = list(Pair.objects.filter(dataset=listed.dataset).order_by("chosen_score", "pk").values_list("pk", flat=True))
    first_row(page, by_gap[0])
    assert shown(page) == by_gap[:PAGE]
    page.screenshot(path=str(TEST_OUTPUT / "pair-list-sorted.png"), full_page=True)
    assert no_overflow(page)

    page.click("#next-page")
    first_row(page, by_gap[PAGE])
    assert shown(page) == by_gap[PAGE:2 * PAGE] and "after=" in page.url
    page.keyboard.press("]")  # the next page by key
    first_row(page, by_gap[2 * PAGE])
    assert shown(page) == by_gap[2 * PAGE:] and page.locator("#next-page").count() == 0
    page.click("#previous-page")
    first_row(page, by_gap[PAGE])
    assert shown(page) == by_gap[PAGE:2 * PAGE]
    page.keyboard.press("[")
    first_row(page, by_gap[0])
    assert shown(page) == by_gap[:PAGE] and page.locator("#previous-page").count() == 0

    page.fill("#jump-form input[name=at]", str(by_gap[7]))
    page.click("#jump-form button")
    page.wait_for_url(re.compile(rf"at={by_gap[7]}"))
    assert shown(page) == by_gap[7:7 + PAGE] and "order=gap" in page.url

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.locator("#pair-table tr.current").get_attribute("data-pair") == str(by_gap[7])
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(re.compile(rf"/pairs/{by_gap[8]}/$"))


def test_search_marks_the_match_in_an_excerpt_around_it(live_server, browser_page, listed):
    page = browser_page
    log_in(page, live_server, listed.viewer)
    page.goto(f"{live_server.url}/datasets/{listed.dataset.pk}/pairs/?q=递归")
    page.wait_for_selector("#pair-table mark")
    assert page.locator("#pair-table tbody tr").first.locator("mark").inner_text() == "递归"
    page.screenshot(path=str(TEST_OUTPUT / "pair-list-search.png"), full_page=True)
    assert no_overflow(page)


def test_question_mark_lists_every_key_and_escape_closes_it(live_server, browser_page, listed):
    page = browser_page
    log_in(page, live_server, listed.viewer)
    page.goto(f"{live_server.url}/datasets/{listed.dataset.pk}/pairs/")
    assert not page.locator("#key-help").is_visible()
    page.keyboard.press("?")
    page.wait_for_selector("#key-help[open]")
    keys = page.locator("#key-help kbd").all_inner_texts()
    for key in ["?", "Esc", "j", "k", "o", "Enter", "]", "[", "/", "1", "4", "c", "p", "s", "u"]:
        assert key in keys, key
    page.screenshot(path=str(TEST_OUTPUT / "key-help.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#key-help:not([open])", state="attached")
    page.fill("#pair-filter input[name=q]", "?")  # typed into a field, "?" is text
    assert not page.locator("#key-help").is_visible()
    page.locator("header .key-help-button").click()  # and the header's button opens it with the mouse
    page.wait_for_selector("#key-help[open]")

"""End to end in headless Chromium: keyboard review with undo and progress, two reviewers at once, and an
audit drawn, reviewed by two reviewers and reported with figures computed by hand here."""

import math
from collections import Counter

import pytest
from django.core.management import call_command

from annotation.models import Pair
from review.models import Review, ReviewSettings

from .conftest import TEST_OUTPUT
from .helpers import Team, generated_pairs, log_in, write_jsonl
from .test_audits import wilson_by_hand

pytestmark = pytest.mark.browser


def load(team, tmp_path, n=24):
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(n))
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    # These tests read verdicts in chosen/rejected terms ("1" = chosen better): labelled review. Blind review (the
    # default) has its own test (test_browser_decisions.py).
    ReviewSettings.objects.create(dataset=team.dataset, blind_review=False)


def wait_for_keys(page):
    """The queue's keys act once htmx has processed the page (review.js marks <html>)."""
    page.wait_for_selector("html[data-review-keys=ready]", state="attached")


def current_pair(page):
    return int(page.locator("#review-item").get_attribute("data-pair"))


def press_and_wait_for_another_pair(page, *keys):
    before = current_pair(page)
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_selector(f"#review-item:not([data-pair='{before}'])")
    return before


def overview_reviewed(page, live_server, team):
    """The overview's count of reviewed pairs (its table's total row), read from a fresh load of the page."""
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/overview/")
    return int(page.locator("#overview-counts tfoot [data-count=reviewed]").inner_text().replace(",", ""))


def test_a_reviewer_reviews_three_pairs_with_the_keyboard_undoes_one_and_sees_the_progress(
        live_server, browser_page, tmp_path):
    team = Team.create("键盘评审")
    load(team, tmp_path)
    page = browser_page
    log_in(page, live_server, team.reviewer)
    assert overview_reviewed(page, live_server, team) == 0
    page.get_by_role("link", name=team.dataset.name, exact=True).click()
    assert page.locator("#review-progress").get_attribute("data-reviewed-pairs") == "0"
    page.click("#tab-review")  # the dataset page's Review tab
    page.click("#start-review")
    page.wait_for_selector("#review-item[data-state=fresh]")
    wait_for_keys(page)
    page.wait_for_selector("#queue-progress-counts[data-reviewed='0']")
    page.keyboard.press("Enter")  # no verdict yet: the item comes back with the message, nothing is saved
    page.wait_for_selector("#verdict-errors")
    assert not Review.objects.exists()

    first = press_and_wait_for_another_pair(page, "1", "Enter")
    second = press_and_wait_for_another_pair(page, "2", "c", "Enter")
    third = press_and_wait_for_another_pair(page, "4", "p", "Enter")
    page.wait_for_selector("#queue-progress-counts[data-mine='3']")  # the queue-wide counts are renewed each minute
    reviews = {r.pair_id: (r.verdict, r.better_correct, r.prompt_ok)
               for r in Review.objects.filter(reviewer=team.reviewer)}
    assert reviews[first] == ("chosen_better", True, True)
    assert reviews[second] == ("rejected_better", False, True)
    assert reviews[third] == ("both_bad", None, False)

    page.keyboard.press("u")
    page.wait_for_selector(f"#review-item[data-pair='{third}'][data-state=fresh]")
    page.wait_for_selector("#queue-progress-counts[data-mine='2']")
    assert not Review.objects.filter(pair_id=third).exists()
    page.screenshot(path=str(TEST_OUTPUT / "review-queue-after-undo.png"), full_page=True)

    page.keyboard.press("k")  # previous, as in Gmail
    page.wait_for_selector(f"#review-item[data-pair='{second}'][data-state=history]")
    assert page.locator("#verdict-form input[value=b]").is_checked()
    page.keyboard.press("j")  # next
    page.wait_for_selector(f"#review-item[data-pair='{third}'][data-state=fresh]")

    page.get_by_role("link", name=team.dataset.name, exact=True).click()
    assert page.locator("#review-progress").get_attribute("data-reviewed-pairs") == "2"
    assert overview_reviewed(page, live_server, team) == 2  # three reviewed, one undone
    page.screenshot(path=str(TEST_OUTPUT / "overview-after-review.png"), full_page=True)


def queue_in_two_browsers(live_server, browser_page, team):
    """The dataset's review queue open for its reviewer in one browser and its admin in another."""
    first = browser_page
    second = first.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    for page, user in ((first, team.reviewer), (second, team.admin)):
        log_in(page, live_server, user)
        page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/review/")
        page.wait_for_selector("#review-item")
        wait_for_keys(page)
    return first, second


def test_two_reviewers_in_two_browsers_never_receive_the_same_pair(live_server, browser_page, tmp_path):
    team = Team.create("两位评审")
    load(team, tmp_path, n=6)
    first, second = queue_in_two_browsers(live_server, browser_page, team)
    received = []
    # Both work through the queue, alternating, until it is empty for both.
    while True:
        busy = [p for p in (first, second) if p.locator("#review-item").get_attribute("data-state") != "empty"]
        if not busy:
            break
        for page in busy:
            received.append(current_pair(page))
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            page.wait_for_selector(f"#review-item:not([data-pair='{received[-1]}'])")
    second.screenshot(path=str(TEST_OUTPUT / "review-second-reviewer.png"), full_page=True)
    assert sorted(received) == sorted(Pair.objects.filter(dataset=team.dataset).values_list("pk", flat=True))
    assert Counter(Review.objects.values_list("pair_id", flat=True)) == Counter(received)


def test_two_reviewers_in_two_browsers_with_overlap_2_receive_each_pair_exactly_twice(
        live_server, browser_page, tmp_path):
    team = Team.create("重叠评审")
    load(team, tmp_path, n=6)
    ReviewSettings.objects.filter(dataset=team.dataset).update(reviews_per_pair=2)
    first, second = queue_in_two_browsers(live_server, browser_page, team)
    received = {first: [], second: []}
    while True:
        busy = [p for p in (first, second) if p.locator("#review-item").get_attribute("data-state") != "empty"]
        if not busy:
            break
        for page in busy:
            received[page].append(current_pair(page))
            press_and_wait_for_another_pair(page, "1", "Enter")
    pairs = Pair.objects.filter(dataset=team.dataset).values_list("pk", flat=True)
    assert Counter(received[first] + received[second]) == {pk: 2 for pk in pairs}
    assert all(len(set(got)) == len(got) for got in received.values())  # never twice to one reviewer
    assert Counter(Review.objects.values_list("pair_id", flat=True)) == {pk: 2 for pk in pairs}


def kappa_by_hand(a, b):
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    chance = sum((a.count(v) / n) * (b.count(v) / n) for v in set(a) | set(b))
    return (observed - chance) / (1 - chance)


def test_an_audit_is_drawn_reviewed_by_two_reviewers_and_reported_per_domain(live_server, browser_page, tmp_path):
    team = Team.create("抽样审计")
    load(team, tmp_path)
    page = browser_page
    log_in(page, live_server, team.admin)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/audits/")
    page.fill("#audit-form input[name=label]", "第一版")
    page.fill("#audit-form input[name=n_per_domain]", "4")
    page.fill("#audit-form input[name=reviews_per_pair]", "2")
    page.check("#audit-form input[name=domain][value=math]")
    page.check("#audit-form input[name=domain][value=code]")
    page.click("#audit-form button[type=submit]")
    page.wait_for_url("**/audits/*/")
    report_url = page.url

    # Each reviewer answers by the pair's rank in its domain: "1" = chosen better (and correct), "2" = rejected better.
    drawn = {d: sorted(Pair.objects.filter(dataset=team.dataset, domain=d).values_list("pk", flat=True)) for d in
             ("math", "code")}
    plan = {"admin": {"math": "1122", "code": "1122"}, "reviewer": {"math": "1222", "code": "1121"}}
    for user, name in ((team.admin, "admin"), (team.reviewer, "reviewer")):
        if name == "reviewer":
            page = page.context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            log_in(page, live_server, user)
            page.goto(report_url)
        page.click("#audit-review")
        page.wait_for_selector("#review-item")
        wait_for_keys(page)
        while page.locator("#review-item").get_attribute("data-state") != "empty":
            pair = current_pair(page)
            domain = "math" if pair in drawn["math"] else "code"
            press_and_wait_for_another_pair(page, plan[name][domain][drawn[domain].index(pair)], "Enter")

    page.goto(report_url)
    page.screenshot(path=str(TEST_OUTPUT / "audit-report.png"), full_page=True)
    for domain in ("math", "code"):
        yes = {name: [v == "1" for v in plan[name][domain]] for name in plan}
        good = sum(a and b for a, b in zip(yes["admin"], yes["reviewer"]))
        low, high = wilson_by_hand(good, 4)
        kappa = kappa_by_hand(yes["admin"], yes["reviewer"])
        row = page.locator(f"#audit-report tr[data-domain={domain}]")
        assert row.locator("[data-good]").get_attribute("data-good") == str(good)
        assert row.locator("[data-share]").get_attribute("data-share") == f"{good / 4:.4f}"
        assert row.locator("[data-interval]").get_attribute("data-interval") == f"{low:.4f}–{high:.4f}"
        assert row.locator("[data-agreement]").get_attribute("data-method") == "kappa"
        assert math.isclose(float(row.locator("[data-agreement]").get_attribute("data-agreement")), kappa,
                            abs_tol=5e-5)

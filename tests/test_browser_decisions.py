"""End to end in headless Chromium: bulk keep and discard from low-quality rule lists and their undo; the review
queue opened from a dashboard number; blind review's random, recorded A/B order."""

import pytest
from django.core.management import call_command

from annotation.models import Judge, Judgement, Pair
from review.models import DecisionBatch, PairDecision, Review, ReviewAssignment

from .conftest import TEST_OUTPUT
from .helpers import Team, generated_pairs, log_in, write_jsonl

pytestmark = pytest.mark.browser


def load(team, tmp_path, n=24):
    path = write_jsonl(tmp_path / "pairs.jsonl", generated_pairs(n))
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    return list(Pair.objects.filter(dataset=team.dataset).order_by("pk"))


def states(pairs):
    return {p.pk: (p.status, p.status_reason) for p in Pair.objects.filter(pk__in=[p.pk for p in pairs])}


def decide_from_rule_list(page, live_server, team, rule, action, reason):
    """From the low-quality rules page: open the rule's list, decide it, confirm; returns the decision's id."""
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/quality/")
    # Defect rules and signals (reward-filtered is one) are two tables of the page.
    page.click(f"tr[data-rule='{rule}'] td[data-total] a:not(.review-link)")
    page.wait_for_url("**/pairs/?view=*")
    page.click("#decide summary")
    page.check(f"#decide-form input[name=action][value={action}]")
    page.fill("#decide-form textarea[name=reason]", reason)
    page.click("#decide-form button[type=submit]")
    page.wait_for_selector("#decision-preview")
    preview = int(page.locator("#decision-preview").get_attribute("data-change"))
    page.click("#decision-confirm-button")
    page.wait_for_selector("#decision[data-batch]")
    return int(page.locator("#decision").get_attribute("data-batch")), preview


def test_an_admin_keeps_and_discards_a_rule_lists_pairs_in_bulk_and_undoes_both(live_server, browser_page, tmp_path):
    team = Team.create("批量决定")
    pairs = load(team, tmp_path)
    filtered, failing = pairs[:6], pairs[10:14]
    Pair.objects.filter(pk__in=[p.pk for p in filtered]).update(
        status="filtered", status_reason="reward:crm v1 margin=-0.8 was=pending")
    judge = Judge.objects.create(name="flaky-judge")
    for p in failing:
        Judgement.objects.create(response=p.chosen, judge=judge, status="parse_error", raw_output="无法解析")
    before = states(pairs)
    page = browser_page
    log_in(page, live_server, team.admin)

    # Keep every pair the reward model filtered: the rule's list, then the confirmation with its count.
    kept, preview = decide_from_rule_list(page, live_server, team, "reward-filtered", "keep", "人工复核：奖励模型误判")
    assert preview == 6 and page.locator("#decision").get_attribute("data-changed") == "6"
    batch = DecisionBatch.objects.get(pk=kept)
    assert (batch.action, batch.actor, batch.reason) == ("keep", team.admin, "人工复核：奖励模型误判")
    assert batch.selection == "view=reward-filtered"
    assert all(states(filtered)[p.pk] == ("kept", f"decision batch={kept}") for p in filtered)
    page.screenshot(path=str(TEST_OUTPUT / "decision-bulk-keep.png"), full_page=True)

    # Discard the pairs a judge could not score, from that rule's list.
    discarded, preview = decide_from_rule_list(page, live_server, team, "judge-failures", "discard", "评分失败")
    assert preview == 4
    assert all(states(failing)[p.pk] == ("filtered", f"decision batch={discarded}") for p in failing)
    assert set(PairDecision.objects.filter(batch_id=discarded).values_list("pair_id", flat=True)) == {
        p.pk for p in failing}

    # The decisions page lists both, with who and why; each one's undo puts its pairs back exactly.
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/decisions/")
    assert page.locator(f"#decision-table tr[data-batch='{kept}']").inner_text().count("人工复核") == 1
    for batch_id in (discarded, kept):
        page.click(f"#decision-table tr[data-batch='{batch_id}'] a")
        page.click("#decision-undo")
        page.wait_for_selector("#decision-undone")
        page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/decisions/")
    assert states(pairs) == before
    assert all(b.undone_by == team.admin for b in DecisionBatch.objects.all())
    # The rule's list holds its pairs again.
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/pairs/?view=reward-filtered")
    assert page.locator("#pair-table tbody tr[data-pair]").count() == 6


def test_a_reviewer_opens_the_queue_over_a_dashboard_numbers_pairs(live_server, browser_page, tmp_path):
    team = Team.create("从仪表盘评审")
    pairs = load(team, tmp_path)
    math = {p.pk for p in pairs if p.domain == "math"}
    page = browser_page
    log_in(page, live_server, team.reviewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/overview/")
    cell = page.locator("#overview-counts tr[data-domain=math] td:has(a[data-count=pending])")
    assert cell.locator("a[data-count=pending]").inner_text() == str(len(math))
    cell.locator("a.review-link").click()
    page.wait_for_selector("#review-item[data-state=fresh]")
    assert "/review/?" in page.url and "domain=math" in page.url and "status=pending" in page.url
    page.wait_for_selector(f"#queue-progress-counts[data-total='{len(math)}']")
    seen = set()
    for _ in range(len(math)):
        pair_id = int(page.locator("#review-item").get_attribute("data-pair"))
        seen.add(pair_id)
        page.check("#verdict-form input[name=verdict][value=tie]")
        page.click("#verdict-submit")
        page.wait_for_selector(f"#review-item:not([data-pair='{pair_id}'])")
    page.wait_for_selector("#queue-empty")
    assert seen == math and set(Review.objects.values_list("pair_id", flat=True)) == math
    page.screenshot(path=str(TEST_OUTPUT / "queue-from-dashboard.png"), full_page=True)


def test_blind_review_shows_each_pair_in_a_random_order_that_is_recorded(live_server, browser_page, tmp_path):
    team = Team.create("盲评")
    pairs = {p.pk: p for p in load(team, tmp_path, n=16)}  # no review settings: blind is the default
    page = browser_page
    log_in(page, live_server, team.reviewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/review/")
    page.wait_for_selector("#review-item[data-state=fresh]")
    assert page.locator("#queue-blind").count() == 1 and page.locator("#queue-unblind").count() == 0
    shown = {}
    for _ in range(len(pairs)):
        pair_id = int(page.locator("#review-item").get_attribute("data-pair"))
        a_text = page.locator("#response-A .md").inner_text().strip()
        headings = page.locator("#review-item .response h3").all_inner_texts()
        assert headings == ["A", "B"], "blind: no chosen/rejected labels, no model names"
        assert page.locator("#review-item [data-side]").count() == 0
        pair = pairs[pair_id]
        assert a_text in (pair.chosen.text, pair.rejected.text)
        shown[pair_id] = a_text == pair.rejected.text
        page.check("#verdict-form input[name=verdict][value=a]")
        page.click("#verdict-submit")
        page.wait_for_selector(f"#review-item:not([data-pair='{pair_id}'])")
    page.wait_for_selector("#queue-empty")
    recorded = dict(ReviewAssignment.objects.filter(reviewer=team.reviewer).values_list("pair_id", "rejected_first"))
    assert recorded == shown
    assert 0 < sum(shown.values()) < len(shown), "both orders occur over 16 pairs (a fair coin each)"
    for r in Review.objects.filter(reviewer=team.reviewer):
        assert r.blind is True and r.rejected_first is shown[r.pair_id]
        assert r.verdict == ("rejected_better" if shown[r.pair_id] else "chosen_better"), "A mapped back"

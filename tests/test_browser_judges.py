"""End to end in headless Chromium: staff add a judge in the app and try it on five responses against the
loopback judge; a rubric edit becomes a new version. The pages fit a 1,280 px window."""

import pytest
from django.contrib.auth import get_user_model

from annotation.models import Judge, Judgement, Membership, Rubric, Role
from annotation.rubrics import DEFAULT_RUBRICS

from .conftest import TEST_OUTPUT
from .helpers import PASSWORD, Team, log_in
from .llm_server import LLMServer, Reply
from .test_browser_hostile_rendering import LONG_CHINESE, LONG_URL, assert_fits, watch_errors
from .test_scoring import make_responses

pytestmark = pytest.mark.browser


@pytest.fixture
def rubrics(transactional_db):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})


def test_staff_add_a_judge_and_try_it_on_five_responses(live_server, browser_page, rubrics):
    team = Team.create("评委试用")
    staff = get_user_model().objects.create_user(username="staff-judges", password=PASSWORD, is_staff=True)
    Membership.objects.create(dataset=team.dataset, user=staff, role=Role.ADMIN)
    make_responses(team.dataset, ["第一个回答：解释清楚。", f"第二个回答 NOPARSE {LONG_URL}",
                                  "第三个回答 HOSTILE", f"第四个回答 {LONG_CHINESE}", "第五个回答", "第六个回答"])
    page = browser_page
    errors = watch_errors(page)
    with LLMServer(latency=0.05) as server:
        server.when("NOPARSE", Reply(content="我认为这个回答写得不错。" + "很好" * 200))
        server.when("HOSTILE", Reply(content='<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
                                             "总体评分：[4]"))
        log_in(page, live_server, staff)
        page.get_by_role("link", name="Judges", exact=True).click()
        assert_fits(page, "the judges list")
        page.click("#judge-add")
        assert "where the worker runs" in page.locator("#key-note").inner_text()
        page.get_by_label("Name").fill("loop-judge")
        page.get_by_label("Base URL").fill(server.base_url)
        page.get_by_label("Model id").fill("loop-model")
        page.get_by_label("API key variable").fill("DATABASE_URL")
        page.click("#judge-form button[type=submit]")
        # A variable that is not marked as a provider key is refused, naming the rule.
        assert "COIGP_JUDGE_KEY_" in page.locator("#judge-form").inner_text()
        page.get_by_label("API key variable").fill("")
        page.click("#judge-form button[type=submit]")
        page.wait_for_selector("#judge-preview")
        judge = Judge.objects.get(name="loop-judge")
        assert judge.base_url == server.base_url

        page.select_option("#preview-form select[name=dataset]", label=team.dataset.name)
        page.click("#preview-form button[type=submit]")
        page.wait_for_selector("#preview-results")
        rows = page.locator("#preview-results .preview-row")
        assert rows.count() == 5 and server.requests == 5
        scores = [rows.nth(i).locator(".parsed").inner_text().strip() for i in range(5)]
        assert scores[0] == "7" and scores[2] == "4" and scores[4] == "7"
        assert scores[1].startswith("No score could be parsed")
        # The hostile answer is shown as text, never run.
        assert "<script>window.pwned=2</script>" in rows.nth(2).locator(".raw-answer").inner_text()
        assert page.evaluate("window.pwned") is None
        assert Judgement.objects.count() == 0
        assert_fits(page, "the judge page with its preview")
        page.screenshot(path=str(TEST_OUTPUT / "judge_preview_1280.png"), full_page=True)
    assert errors == []


def test_a_dataset_admin_sees_why_the_preview_cannot_send_the_key(live_server, browser_page, rubrics, monkeypatch):
    monkeypatch.delenv("COIGP_JUDGE_KEY_BROWSER", raising=False)
    team = Team.create("缺少密钥")
    make_responses(team.dataset, ["回答"])
    with LLMServer() as server:
        judge = Judge.objects.create(name="keyed", base_url=server.base_url, model="m",
                                     api_key_env="COIGP_JUDGE_KEY_BROWSER")
        page = browser_page
        log_in(page, live_server, team.admin)
        page.goto(f"{live_server.url}/judges/{judge.pk}/")
        assert "COIGP_JUDGE_KEY_BROWSER is not set in the web process" in page.locator("#key-problem").inner_text()
        assert page.locator("#judge-form").count() == 0  # dataset admins do not change judges
        page.click("#preview-form button[type=submit]")
        page.wait_for_selector("#preview-error")
        assert "Nothing was sent" in page.locator("#preview-error").inner_text()
        assert server.requests == 0
        assert_fits(page, "the judge page of a dataset admin")


def test_staff_edit_a_rubric_and_see_its_versions(live_server, browser_page, rubrics):
    staff = get_user_model().objects.create_user(username="staff-rubrics", password=PASSWORD, is_staff=True)
    page = browser_page
    log_in(page, live_server, staff)
    page.goto(f"{live_server.url}/rubrics/")
    assert_fits(page, "the rubrics list")
    page.get_by_role("link", name="Math").click()
    page.fill("textarea[name=text]", DEFAULT_RUBRICS["math"] + "\n补充：检查单位。")
    page.click("#rubric-form button[type=submit]")
    page.wait_for_selector(".rubric-version[data-version='2']")
    assert page.locator(".rubric-version").count() == 2
    assert Rubric.objects.get(domain="math", version=2).text.endswith("补充：检查单位。")
    assert_fits(page, "a rubric's history")
    page.screenshot(path=str(TEST_OUTPUT / "rubric_history_1280.png"), full_page=True)


def test_the_admin_pages_fit_a_1280_px_window(live_server, browser_page, rubrics):
    """Members (with a search and a new account's link), reviewer statistics, audits with the sample form,
    and the reward leaderboard, on long Chinese names and texts."""
    from review.models import Review

    from .pair_data import make_pair

    team = Team.create("宽度检查" * 6)
    get_user_model().objects.create_user(username="reviewer-" + "很长的名字" * 8, first_name="很长" * 20,
                                         password=PASSWORD)
    pairs = [make_pair(team.dataset, f"问题{i}{LONG_CHINESE}", f"好{i}", f"差{i}", domain=d)
             for i, d in enumerate(["chat", "code", "math"] * 2)]
    for pair in pairs:
        Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="chosen_better", better_correct=True)
        Review.objects.create(pair=pair, reviewer=team.admin, verdict="tie", better_correct=False)
    page = browser_page
    errors = watch_errors(page)
    log_in(page, live_server, team.admin)
    base = f"{live_server.url}/datasets/{team.dataset.pk}"

    page.goto(f"{base}/members/?q=reviewer")
    page.wait_for_selector("#user-results")
    page.fill("#new-member-form input[name=username]", "new.viewer")
    page.select_option("#new-member-form select[name=role]", "viewer")
    page.click("#new-member-form button[type=submit]")
    assert "/invite/" in page.locator("#invite-link").input_value()
    assert_fits(page, "the members page")
    page.screenshot(path=str(TEST_OUTPUT / "members_1280.png"), full_page=True)

    page.goto(f"{base}/reviewers/")
    assert page.locator("#reviewer-stats tbody tr").count() == 2
    assert_fits(page, "the reviewer statistics")
    page.screenshot(path=str(TEST_OUTPUT / "reviewer_stats_1280.png"), full_page=True)

    page.goto(f"{base}/audits/")
    page.fill("#audit-form input[name=n_per_domain]", "5")
    page.click("#audit-form button[type=submit]")
    assert "Fewer than 5 pairs in" in page.locator("#audit-form").inner_text()
    assert_fits(page, "the audit form with its warning")
    page.screenshot(path=str(TEST_OUTPUT / "audit_form_1280.png"), full_page=True)
    page.check("#audit-form input[name=whole_strata]")
    page.click("#audit-form button[type=submit]")
    page.wait_for_url("**/audits/*/")
    assert page.locator(".whole-stratum").count() == 3
    assert_fits(page, "an audit report")

    page.goto(f"{base}/reward/leaderboard/")
    assert_fits(page, "the reward leaderboard")
    page.screenshot(path=str(TEST_OUTPUT / "reward_leaderboard_1280.png"), full_page=True)
    assert errors == []

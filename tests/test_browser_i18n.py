"""In headless Chromium: the language selector in the page header switches the UI to Simplified
Chinese and back; a screenshot of the dataset page in Chinese goes to test-output/."""

from pathlib import Path

import pytest
from django.core.management import call_command

from .conftest import TEST_OUTPUT
from .helpers import PASSWORD, Team

pytestmark = pytest.mark.browser

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "coigp_sample.jsonl"


def switch_language(page, code):
    # The selector submits its form on change (static/js/app.js); the view redirects to this page.
    with page.expect_navigation():
        page.select_option("header form.lang select[name=language]", code)
    page.wait_for_selector(f"html[lang={code}]")


def test_the_header_selector_switches_the_dataset_page_to_chinese_and_back(live_server, browser_page,
                                                                         transactional_db):
    team = Team.create("中文界面")
    call_command("import_pairs", str(SAMPLE), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", team.admin.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.get_by_role("link", name=team.dataset.name, exact=True).click()
    page.wait_for_selector("#domain-counts")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="By domain").is_visible()

    switch_language(page, "zh-hans")
    assert page.url.endswith(f"/datasets/{team.dataset.pk}/")
    assert page.get_by_role("heading", name="按领域").is_visible()
    assert page.get_by_role("heading", name="By domain").count() == 0
    header = page.locator("header.topbar").inner_text()
    assert "数据集" in header and "任务" in header and "退出登录" in header and "Log out" not in header
    domains = page.locator("#domain-counts tbody td:first-child").all_inner_texts()
    assert sorted(domains) == sorted(["对话", "代码", "数学", "逻辑推理", "小说续写", "角色扮演"])
    assert page.locator("span.muted", has_text="你的角色：管理员").is_visible()
    assert page.locator("header select[name=language] option:checked").inner_text() == "简体中文"
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "dataset-page-zh-hans.png"), full_page=True)

    # The choice is remembered (cookie) on the next page.
    page.get_by_role("link", name="任务", exact=True).click()
    assert page.get_by_role("heading", name="任务", exact=True).is_visible()

    switch_language(page, "en")
    assert page.get_by_role("heading", name="Jobs", exact=True).is_visible()
    page.get_by_role("link", name="Datasets", exact=True).click()
    page.get_by_role("link", name=team.dataset.name, exact=True).click()
    assert page.get_by_role("heading", name="By domain").is_visible()
    assert page.get_by_role("heading", name="按领域").count() == 0

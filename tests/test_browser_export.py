"""End to end in headless Chromium: a reviewer exports a dataset, watches the job and downloads a file."""

import json

import pytest
from django.core.management import call_command

from .conftest import ROOT
from .test_browser_upload import open_dataset_as
from .helpers import Team

pytestmark = pytest.mark.browser


def test_a_reviewer_exports_with_a_split_and_downloads_the_test_file(live_server, thread_worker, browser_page,
                                                                      settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    team = Team.create("导出测试")
    call_command("import_pairs", str(ROOT / "sample_data" / "coigp_sample.jsonl"), dataset=team.dataset.name,
                 no_progress=True)
    page = browser_page
    open_dataset_as(page, live_server, team.reviewer, team.dataset)

    page.click("#tab-export")
    page.select_option("#export-form select[name=format]", "trl-chat")
    page.fill("#export-form input[name=split]", "0.9")
    page.check("#export-form input[name=with_meta]")
    page.click("#export-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    assert page.locator("[data-count=rows]").inner_text() == "72"

    with page.expect_download() as download_info:
        page.get_by_role("link", name="pairs_test.jsonl").click()
    rows = [json.loads(line) for line in open(download_info.value.path(), encoding="utf-8")]
    assert rows and all(r["prompt"][-1]["role"] == "user" and r["chosen"][0]["role"] == "assistant" for r in rows)
    assert {r["domain"] for r in rows} == {"chat", "code", "math", "logic", "novel", "role"}
    card = page.get_by_role("link", name="README.md")
    assert card.count() == 1

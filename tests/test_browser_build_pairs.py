"""End to end in headless Chromium: an admin builds pairs from the sample's judge scores."""

from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Pair, PairBuildRun

from .helpers import Team
from .test_browser_upload import open_dataset_as

pytestmark = pytest.mark.browser

SAMPLE_RESPONSES = Path(__file__).resolve().parent.parent / "sample_data" / "coigp_sample_responses.jsonl"


def test_an_admin_builds_pairs_and_sees_the_run(live_server, thread_worker, browser_page):
    team = Team.create("构造样例")
    call_command("import_pairs", str(SAMPLE_RESPONSES), dataset=team.dataset.name, no_progress=True)
    page = browser_page
    open_dataset_as(page, live_server, team.admin, team.dataset)

    page.click("#tab-pipeline")
    page.click("#pair-building summary")
    page.fill("#build-pairs-form input[name=threshold]", "1.5")
    page.select_option("#build-pairs-form select[name=strategy]", "best-worst")
    page.click("#build-pairs-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    run = PairBuildRun.objects.get(dataset=team.dataset)
    created = Pair.objects.filter(dataset=team.dataset, origin="constructed").count()
    assert created > 0 and run.params["strategy"] == "best-worst" and run.params["threshold"] == 1.5
    assert page.locator("[data-count=pairs_created]").inner_text() == str(created)

    page.get_by_role("link", name=team.dataset.name, exact=True).click()
    row = page.locator(f"#build-runs tr[data-run='{run.pk}']")
    assert "best-worst" in row.inner_text() and "1.5" in row.inner_text()

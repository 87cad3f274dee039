"""End to end in headless Chromium: log in, upload the sample file, watch the job, see the counts."""

import json
from collections import Counter
from pathlib import Path

import pytest

from annotation.ingest.formats import parse_domain
from annotation.models import Dataset, Membership, Role

from .helpers import PASSWORD, Team

pytestmark = pytest.mark.browser

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "coigp_sample.jsonl"


def expected_pairs_by_domain(path):
    seen, counts = set(), Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        key = json.dumps([record["conversations"], record["chosen"], record["rejected"]], ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            counts[parse_domain(record.get("domain"))[0]] += 1
    return counts


def open_dataset_as(page, live_server, user, dataset):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name=dataset.name, exact=True).click()


def test_an_admin_uploads_the_sample_and_sees_pairs_by_domain(live_server, thread_worker, browser_page):
    team = Team.create("浏览器测试")
    page = browser_page
    open_dataset_as(page, live_server, team.admin, team.dataset)

    page.click("#tab-import")
    page.set_input_files("#import-form input[type=file]", str(SAMPLE))
    page.click("#import-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    # The progress partial polls every 2 s; when the job ends the page reloads in its final state.
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    assert page.locator("[data-count=rejected_rows]").inner_text() == "0"

    page.get_by_role("link", name=team.dataset.name, exact=True).click()
    expected = expected_pairs_by_domain(SAMPLE)
    assert len(expected) == 6, "the sample covers the six domains"
    for domain, n in expected.items():
        cell = page.locator(f"#domain-counts tr[data-domain={domain}] [data-pairs]")
        assert cell.inner_text() == f"{n:,}"
    assert page.locator("#total-pairs").inner_text() == f"{sum(expected.values()):,}"


def test_a_viewer_sees_the_dataset_but_no_import_form(live_server, browser_page, transactional_db):
    team = Team.create("只读")
    page = browser_page
    open_dataset_as(page, live_server, team.viewer, team.dataset)
    page.wait_for_selector("#domain-counts")
    assert page.locator("#import-form").count() == 0
    assert Membership.objects.get(user=team.viewer, dataset=Dataset.objects.get(name="只读")).role == Role.VIEWER

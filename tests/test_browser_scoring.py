"""End to end in headless Chromium: an admin starts scoring from the dataset page and watches the job."""

import pytest

from annotation.models import Judge, Judgement, Rubric
from annotation.rubrics import DEFAULT_RUBRICS

from .helpers import Team
from .llm_server import LLMServer, Reply
from .test_browser_upload import open_dataset_as
from .test_scoring import make_responses

pytestmark = pytest.mark.browser


def test_an_admin_scores_responses_from_the_dataset_page_and_sees_the_counts(live_server, thread_worker, browser_page):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})
    team = Team.create("评分测试")
    make_responses(team.dataset, [f"回答{i}" for i in range(20)] + ["NOSCORE <script>alert(1)</script>"])
    with LLMServer(latency=0.05) as server:
        server.when("NOSCORE", Reply(content="<b>写得不错</b>"))
        judge = Judge.objects.create(name="qwen-loop", base_url=server.base_url, model="qwen", max_concurrency=4)
        page = browser_page
        open_dataset_as(page, live_server, team.admin, team.dataset)
        page.click("#score-responses")
        page.get_by_label("qwen-loop").check()
        page.click("#score-form button[type=submit]")
        page.wait_for_url("**/jobs/*/")
        # One answer without a score: the job finished with problems, in amber, and says how many.
        page.wait_for_selector("#job-progress[data-status=problems]", timeout=60_000)
        assert page.locator("#job-status").inner_text() == "Finished with problems"
        assert page.locator("#job-failures").inner_text() == "1 of 21 requests gave no score"
        assert "finished with problems · 1 of 21 requests gave no score" in page.title()
        assert page.locator("[data-count=ok]").inner_text() == "20"
        assert page.locator("[data-count=parse_error]").inner_text() == "1"
        assert "Parse errors" in page.locator("#job-counts").inner_text()
        assert "no score found" in page.locator("#job-errors").inner_text()
        assert page.locator("#job-progress progress").get_attribute("value") == "1.0000"
        assert Judgement.objects.filter(judge=judge).count() == 21

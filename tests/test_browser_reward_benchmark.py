"""End to end in headless Chromium: an admin opens the reward benchmark from the dataset page, starts
a pairwise (A/B) run of a loopback judge, reads the leaderboard and compares two filters."""

import pytest
from django.core.management import call_command

from annotation.models import Judge

from .conftest import TEST_OUTPUT
from .helpers import Team
from .llm_server import LLMServer
from .reward_data import media_root  # noqa: F401
from .test_browser_upload import open_dataset_as
from .test_reward_benchmark import _gold_file
from .test_reward_pairwise import _answers

pytestmark = pytest.mark.browser


def test_an_admin_runs_a_pairwise_judge_and_reads_the_leaderboard(live_server, thread_worker, browser_page, tmp_path):
    team = Team.create("奖励基准")
    call_command("import_pairs", str(_gold_file(tmp_path / "gold.jsonl")), dataset=team.dataset.name,
                 no_progress=True)
    with LLMServer(paths=("/chat/completions",), responder=_answers) as server:
        Judge.objects.create(name="裁判", base_url=server.base_url, model="m", max_concurrency=4)
        page = browser_page
        open_dataset_as(page, live_server, team.admin, team.dataset)
        page.click("#tab-pipeline")
        page.click("#reward-leaderboard-link")
        page.wait_for_selector("#leaderboard-empty")
        page.select_option("#pairwise select[name=judge]", label="裁判")
        page.click("#pairwise button[type=submit]")
        page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/reward/leaderboard/")
    row = page.locator("#leaderboard tr[data-kind=pairwise]")
    assert row.get_attribute("data-model") == "裁判 (A/B)"
    # The loopback judge prefers the longer response: 10 of 15 pairs; the tie flips with the order.
    assert row.locator("td[data-domain=overall]").get_attribute("data-accuracy") == "0.6667"
    assert row.locator("[data-inconsistency]").get_attribute("data-inconsistency") == "0.0667"
    assert "[0.417, 0.848] n=15" in row.locator("td[data-domain=overall]").inner_text()
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "reward-leaderboard.png"), full_page=True)

"""End to end in headless Chromium: an admin scores a dataset with a reward model, moves the
threshold on the what-if page (htmx), and applies the filter."""

import pytest

from annotation.models import Pair, RewardScore

from .conftest import TEST_OUTPUT
from .helpers import Team
from .reward_data import import_lines, learnable_lines, media_root, random_model  # noqa: F401
from .test_browser_upload import open_dataset_as

pytestmark = pytest.mark.browser


def test_an_admin_scores_looks_at_the_what_if_and_applies_the_filter(live_server, thread_worker, browser_page,
                                                                      tmp_path):
    team = Team.create("奖励模型")
    import_lines(team.dataset, learnable_lines(n_prompts=30, pairs_per_prompt=2), tmp_path / "pairs.jsonl")
    model = random_model("rm", team.dataset)
    page = browser_page
    open_dataset_as(page, live_server, team.admin, team.dataset)

    page.click("#tab-pipeline")
    page.locator(f"#reward-models tr[data-reward-model='{model.pk}']").get_by_role("link", name="What-if").click()
    page.wait_for_selector("#what-if-empty")
    page.click("#what-if-actions button:has-text('Score')")
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    assert RewardScore.objects.filter(reward_model=model).count() > 0

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/reward/{model.pk}/what-if/")
    page.fill("#id_threshold", "0.25")
    page.wait_for_selector("#what-if-result[data-threshold='0.25']")
    cell = page.locator("#what-if-survival tr[data-domain=all] td.current")
    kept_shown = int(cell.get_attribute("data-kept"))
    TEST_OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(TEST_OUTPUT / "reward-what-if.png"), full_page=True)
    page.click("#reward-apply-form button")
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    assert Pair.objects.filter(dataset=team.dataset).exclude(status="filtered").count() == kept_shown
    assert page.locator("#reward-by-domain").is_visible()

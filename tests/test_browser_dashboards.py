"""In headless Chromium: the overview and the judge page draw their charts for an admin and a
viewer (a canvas with a size), only the admin sees the refresh button, and a bar opens its list."""

from pathlib import Path

import pytest

from .dashboard_data import crafted
from .helpers import Team, log_in

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent.parent / "test-output"


def canvas_sizes(page):
    page.wait_for_selector("body[data-charts-drawn=true]")
    return page.eval_on_selector_all("canvas[data-chart]", "cs => cs.map(c => [c.dataset.chart, c.width, c.height])")


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_overview_and_judge_charts_draw(live_server, browser_page, transactional_db, role):
    team = Team.create(f"图表 {role}")
    data = crafted(team)
    page = browser_page
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, live_server, getattr(team, role))

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/")
    page.click("#overview-link")
    sizes = canvas_sizes(page)
    assert {name for name, _w, _h in sizes} == {"scores", "gaps", "margins", "crm", "acceptance", "progress"}
    assert all(w > 0 and h > 0 for _n, w, h in sizes), sizes
    assert page.locator("#dashboard-refresh").count() == (1 if role == "admin" else 0)
    page.screenshot(path=SHOTS / f"dashboard-overview-{role}.png", full_page=True)

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/disagreements/")
    page.select_option("#disagreement-filter select[name=sort]", "name")  # submits itself (data-autosubmit)
    page.wait_for_url("**sort=name*")
    assert page.locator("#disagreement-views tbody tr").count() == 3
    assert page.locator("#disagreement-signals tbody tr").count() == 3
    page.screenshot(path=SHOTS / f"dashboard-disagreements-{role}.png", full_page=True)

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/judges/")
    sizes = canvas_sizes(page)
    assert {name for name, _w, _h in sizes} == {"judge_scores", "judge_domains"}
    assert all(w > 0 and h > 0 for _n, w, h in sizes), sizes
    page.screenshot(path=SHOTS / f"dashboard-judges-{role}.png", full_page=True)

    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/judges/{data.j1.pk}/")
    assert all(w > 0 and h > 0 for _n, w, h in canvas_sizes(page))
    page.screenshot(path=SHOTS / f"dashboard-judge-{role}.png", full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_a_click_on_a_gap_bar_opens_the_pairs_behind_it(live_server, browser_page, transactional_db):
    team = Team.create("图表 click")
    crafted(team)
    page = browser_page
    log_in(page, live_server, team.viewer)
    page.goto(f"{live_server.url}/datasets/{team.dataset.pk}/overview/")
    page.wait_for_selector("body[data-charts-drawn=true]")
    page.locator("canvas[data-chart=gaps]").scroll_into_view_if_needed()
    # The tallest gap bar (3.5 … 4: P1 and P3), found through Chart.js's own element positions.
    x, y = page.eval_on_selector(
        "canvas[data-chart=gaps]",
        """c => { const meta = c.chart.getDatasetMeta(0); const counts = c.chart.data.datasets[0].data;
                  const i = counts.indexOf(Math.max(...counts)); const bar = meta.data[i];
                  const r = c.getBoundingClientRect(); return [r.left + bar.x, r.top + (bar.y + bar.base) / 2]; }""")
    page.mouse.click(x, y)
    page.wait_for_url("**/pairs/?view=gap-range*")
    assert page.locator("#pair-table tr[data-pair]").count() == 2

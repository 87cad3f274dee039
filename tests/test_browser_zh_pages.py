"""In headless Chromium, in 简体中文, with the project's sample data: one page of each area (dataset page and its
tabs, pair list, pair page, review queue, jobs, a job, dashboards, low-quality rules) has no English left in
its interface (headings, labels, buttons, links, table heads, keys' list), and none is wider than 1,280 px.
Screenshots go to test-output/zh-*.png."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Job, Pair

from .conftest import TEST_OUTPUT
from .helpers import Team, log_in

pytestmark = pytest.mark.browser

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "coigp_sample.jsonl"
# Words that stay as they are in Chinese (locale/zh_Hans/GLOSSARY.md: product, format and key names).
KEPT = {"COIG-P", "LLM", "CRBench", "JSONL", "CSV", "TRL", "Alpaca", "OpenRLHF", "LLaMA-Factory", "sharegpt",
        "Hugging", "Face", "Parquet", "MinHash", "Jaccard", "token", "KaTeX", "Enter", "Esc", "ETA", "AUC", "ROC",
        "Cohen", "Krippendorff", "Bradley-Terry", "JSON", "Markdown", "URL", "coigp-web", "ok", "CRM", "p95",
        "n-gram", "API"}
# The interface's own text: not the data (prompts, responses, names), which may be in any language.
CHROME = ("h1, h2, h3, th, label, legend, summary, button, dt, nav a, .tabs a, .pager, .saved-filters > span, "
          "#key-help dd, .page-head > a, .step strong, main .muted:not(td):not(td *)")


def english_left(page):
    texts = page.locator(CHROME).evaluate_all("els => els.filter(e => e.offsetParent !== null || e.closest('dialog[open]'))"
                                                ".map(e => e.innerText)")
    left = set()
    for text in texts:
        # File names and formulas (r(chosen) − r(rejected)) are data and notation, not interface words.
        text = re.sub(r"\S+\.(jsonl|json|csv|parquet|gz|zst)\b|r\((chosen|rejected)\)", " ", text)
        for word in re.findall(r"[A-Za-z][A-Za-z'’\-]{2,}", text):
            if not any(word.lower().startswith(k.lower()) for k in KEPT):  # th is upper-cased by CSS
                left.add(word)
    return left


@pytest.fixture
def browser_language():
    return "zh-hans"


def test_every_area_speaks_chinese_and_fits_1280_pixels(live_server, browser_page, transactional_db):
    team = Team.create("中文样例")
    call_command("import_pairs", str(SAMPLE), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)
    ds = team.dataset.pk
    pair = Pair.objects.filter(dataset=team.dataset).order_by("pk").first()
    job = Job.objects.filter(dataset=team.dataset, kind="import").first()
    page = browser_page
    log_in(page, live_server, team.admin)
    pages = {
        "dataset": f"/datasets/{ds}/",
        "dataset-pipeline": f"/datasets/{ds}/#pipeline",
        "dataset-review": f"/datasets/{ds}/#review-tab",
        "pair-list": f"/datasets/{ds}/pairs/?order=gap",
        "pair": f"/datasets/{ds}/pairs/{pair.pk}/",
        "queue": f"/datasets/{ds}/review/",
        "jobs": "/jobs/",
        "job": f"/jobs/{job.pk}/",
        "overview": f"/datasets/{ds}/overview/",
        "quality": f"/datasets/{ds}/quality/",
    }
    found = {}
    for name, url in pages.items():
        page.goto(live_server.url + url)
        page.wait_for_selector("html[lang=zh-hans]")
        page.screenshot(path=str(TEST_OUTPUT / f"zh-{name}.png"), full_page=True)
        found[name] = english_left(page)
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), name
    page.goto(f"{live_server.url}/datasets/{ds}/pairs/")
    page.keyboard.press("?")
    page.wait_for_selector("#key-help[open]")
    found["keys"] = english_left(page)
    left = {name: sorted(words) for name, words in found.items() if words}
    assert left == {}, left

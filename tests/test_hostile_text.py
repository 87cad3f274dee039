"""Model output is hostile: every page that shows text gets `<script>`, `onerror=` and `javascript:`
payloads in every text field, and no executable markup may come out.

To cover another page, add it to PAGES: a name and a function from the fixture's World to a URL
(with its query string). The check parses the HTML; it does not look for substrings, so escaped
payloads shown as text pass and live markup fails.
"""

from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from annotation.models import Judgement, RewardModel, RewardScore
from review.models import Review, ReviewEvent

from .helpers import Team
from .judged import judge
from .pair_data import make_pair

PAYLOAD = (
    "<script>alert('s')</script> <img src=x onerror=alert(1)> <a href=\"javascript:alert(2)\">a</a> "
    "[x](javascript:alert(3)) <javascript:alert(4)> <svg onload=alert(5)> <iframe src=javascript:alert(6)></iframe> "
    "![i](javascript:alert(7)) [y](JaVaScRiPt:alert(8)) \" onmouseover=\"alert(9) ' onfocus='alert(10) $x$"
)


@dataclass
class World:
    team: Team
    pair: object


@pytest.fixture
def world(db):
    team = Team.create(f"数据集 {PAYLOAD[:60]}")
    pair = make_pair(team.dataset, "问题 " + PAYLOAD, "回答 " + PAYLOAD, "坏回答 " + PAYLOAD, system="系统 " + PAYLOAD,
                     history=[{"role": "user", "content": "历史 " + PAYLOAD},
                              {"role": "assistant", "content": "助手 " + PAYLOAD}],
                     chosen_model="m<script>alert(11)</script>", rejected_model="<img src=x onerror=alert(12)>",
                     status="filtered", status_reason="reward:x<script>alert(13)</script> was=pending",
                     chosen_score=5.0, rejected_score=4.0)
    Judgement.objects.create(response=pair.chosen, judge=judge("j<script>alert(14)</script>"), score=7, status="ok",
                             analysis="分析 " + PAYLOAD)
    Judgement.objects.create(response=pair.rejected, judge=judge("j2 <img src=x onerror=alert(15)>"),
                             status="parse_error", raw_output="原文 " + PAYLOAD)
    model = RewardModel.objects.create(name="rm<script>alert(16)</script>", backend="builtin", trained_on=team.dataset)
    RewardScore.objects.create(response=pair.chosen, reward_model=model, reward=0.1)
    RewardScore.objects.create(response=pair.rejected, reward_model=model, reward=0.2)
    review = Review.objects.create(pair=pair, reviewer=team.reviewer, verdict="both_bad", note="备注 " + PAYLOAD)
    ReviewEvent.objects.create(review=review, pair=pair, actor=team.reviewer,
                               before={"verdict": "tie", "note": PAYLOAD}, after=review.snapshot())
    return World(team, pair)


PAGES = {
    "pair-list": lambda w: reverse("pair-list", args=[w.team.dataset.pk]),
    "pair-list-search": lambda w: reverse("pair-list", args=[w.team.dataset.pk]) + "?q=script&reviewer=x%3Cscript%3E",
    "pair-list-bad-filter": lambda w: reverse("pair-list", args=[w.team.dataset.pk]) + "?gap_min=%3Cscript%3E",
    "pair-detail": lambda w: reverse("pair-detail", args=[w.team.dataset.pk, w.pair.pk]),
    "quality-rules": lambda w: reverse("quality-rules", args=[w.team.dataset.pk]),
    "dataset-detail": lambda w: reverse("dataset-detail", args=[w.team.dataset.pk]),
}

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background", "srcdoc"}
FORBIDDEN_TAGS = {"iframe", "object", "embed", "base", "svg", "math", "img", "frame", "applet"}


class Audit(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.in_script = True
            if not (attrs.get("src") or "").startswith("/static/"):
                self.problems.append(f"script not from our static files: {attrs}")
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> {attrs}")
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("meta refresh")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"event handler {name}={value!r} on <{tag}>")
            cleaned = "".join(c for c in (value or "") if c > " ").lower()
            if name in URL_ATTRIBUTES and (cleaned.startswith("javascript:") or cleaned.startswith("data:text")):
                self.problems.append(f"{name}={value!r} on <{tag}>")
            if name.startswith("hx-") and "javascript" in cleaned:
                self.problems.append(f"{name}={value!r} on <{tag}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append(f"inline script: {data[:80]!r}")


def audit(html):
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser.problems


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_hostile_text_stays_inert_on_every_page(client, world, page, role):
    client.force_login(getattr(world.team, role))
    response = client.get(PAGES[page](world))
    assert response.status_code in (200, 400)
    html = response.content.decode()
    assert audit(html) == []
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_payload_is_shown_as_text_where_it_belongs(client, world):
    client.force_login(world.team.admin)
    html = client.get(PAGES["pair-detail"](world)).content.decode()
    assert "&lt;script&gt;" in html and "&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("回答 ") >= 1 and "备注 " in html and "分析 " in html


def test_the_audit_catches_live_markup():
    # The check itself must be able to fail.
    assert audit('<p><img src=x onerror="alert(1)"></p>')
    assert audit('<a href=" javascript:alert(1)">x</a>')
    assert audit("<script>alert(1)</script>")
    assert audit('<script src="https://evil.example/x.js"></script>')
    assert audit('<script src="/static/js/render.js"></script><p>&lt;script&gt;</p>') == []

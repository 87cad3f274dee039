"""Audit samples: a seeded stratified draw, the per-domain report (share, Wilson interval, agreement),
the comparison of two audits, the audit as a review queue, and who may do what."""

import math
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation.models import Pair
from review import audits
from review.models import Audit, Review

from .helpers import Team, generated_pairs, write_jsonl


def load(team, tmp_path, n=24):
    path = write_jsonl(tmp_path / f"pairs-{team.dataset.pk}.jsonl", generated_pairs(n, seed=team.dataset.pk))
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True, no_near_duplicates=True)


@pytest.fixture
def team(db, tmp_path):
    team = Team.create("audited v1")
    load(team, tmp_path)  # 4 pairs in each of the 6 domains
    return team


def wilson_by_hand(x, n, z=1.959963984540054):
    p = x / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def test_an_audit_draws_n_pairs_per_domain_from_the_list_and_the_seed_fixes_the_sample(team):
    filtered = Pair.objects.filter(dataset=team.dataset, domain="code").first()
    Pair.objects.filter(pk=filtered.pk).update(status="filtered")
    audit = audits.draw(team.dataset, n_per_domain=2, seed=7, user=team.admin)
    drawn = Pair.objects.filter(pk__in=audit.pair_ids)
    domains = ["chat", "code", "math", "logic", "novel", "role"]
    assert sorted(drawn.values_list("domain", flat=True)) == sorted(domains * 2)
    assert filtered.pk not in audit.pair_ids, "the default list is the pairs an export takes: pending and kept"
    again = audits.draw(team.dataset, n_per_domain=2, seed=7)
    assert again.pair_ids == audit.pair_ids
    others = [audits.draw(team.dataset, n_per_domain=2, seed=s).pair_ids for s in (1, 2, 3)]
    assert any(o != audit.pair_ids for o in others)
    assert audit.created_by == team.admin and audit.n_per_domain == 2 and audit.reviews_per_pair == 2


def test_a_domain_smaller_than_n_is_taken_whole_and_an_empty_list_is_an_error(team):
    audit = audits.draw(team.dataset, n_per_domain=40, query="domain=math")
    assert sorted(audit.pair_ids) == sorted(Pair.objects.filter(dataset=team.dataset, domain="math")
                                            .values_list("pk", flat=True))
    with pytest.raises(audits.AuditError):
        audits.draw(team.dataset, query="status=withdrawn")


def review(pair_id, user, good):
    verdict = "chosen_better" if good in (True, "incorrect") else "rejected_better"
    Review.objects.create(pair_id=pair_id, reviewer=user, verdict=verdict, better_correct=good is True)


def test_the_report_gives_the_share_its_wilson_interval_and_kappa_per_domain(team):
    audit = audits.draw(team.dataset, n_per_domain=4, query="domain=math")
    p1, p2, p3, p4 = sorted(audit.pair_ids)
    # Reviewer says yes, yes, no, no; admin says yes, no (chosen better but incorrect), no, no.
    for pair_id, mine, theirs in [(p1, True, True), (p2, True, "incorrect"), (p3, False, False), (p4, False, False)]:
        review(pair_id, team.reviewer, mine)
        review(pair_id, team.admin, theirs)
    row = {r["domain"]: r for r in audits.report(audit)}["math"]
    assert (row["drawn"], row["reviewed"], row["complete"], row["good"]) == (4, 4, 4, 1)
    assert row["share"] == 0.25
    assert row["interval"] == pytest.approx(wilson_by_hand(1, 4))
    # κ by hand: observed 3/4; the reviewer says yes half the time, the admin a quarter: chance .5·.25 + .5·.75 = .5.
    assert row["agreement"]["method"] == "kappa"
    assert row["agreement"]["value"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))


def test_a_pair_counts_as_good_when_more_than_half_of_its_reviews_say_so(team):
    audit = audits.draw(team.dataset, n_per_domain=4, query="domain=math")
    p1, p2, p3, p4 = sorted(audit.pair_ids)
    # p1: three reviews, two say good → good. p2: two reviews that disagree → not good (one of two is not
    # more than half). p3: a single review that says good → good. p4: not reviewed → left out of the share.
    for pair_id, verdicts in [(p1, {team.reviewer: True, team.admin: True, team.viewer: "incorrect"}),
                              (p2, {team.reviewer: True, team.admin: False}), (p3, {team.reviewer: True})]:
        for user, good in verdicts.items():
            review(pair_id, user, good)
    row = {r["domain"]: r for r in audits.report(audit)}["math"]
    assert (row["drawn"], row["reviewed"], row["complete"], row["reviews"], row["good"]) == (4, 3, 2, 6, 2)
    assert row["share"] == pytest.approx(2 / 3)
    assert row["interval"] == pytest.approx(wilson_by_hand(2, 3))
    # α by hand over the pairs rated twice or more (p1: yes yes no, p2: yes no), coincidences o(yes,yes) = 2·1/2,
    # o(yes,no) = o(no,yes) = 2·1/2 + 1: n = 5, n_yes = 3, n_no = 2; α = 1 − (n − 1)·4 / (2·3·2) = −1/3.
    assert row["agreement"]["method"] == "alpha" and row["agreement"]["pairs"] == 2
    assert row["agreement"]["value"] == pytest.approx(-1 / 3)


def test_the_report_shows_the_figures_on_its_page(client, team):
    audit = audits.draw(team.dataset, n_per_domain=4, query="domain=logic", label="v1")
    for pair_id in audit.pair_ids[:3]:
        review(pair_id, team.reviewer, True)
    client.force_login(team.viewer)
    page = client.get(reverse("audit-detail", args=[audit.pk])).content.decode()
    low, high = wilson_by_hand(3, 3)
    assert f'data-interval="{low:.4f}–{high:.4f}"' in page
    assert re.search(r'<tr data-domain="logic">.*?data-share="1\.0000"', page, re.S)
    assert 'id="audit-review"' not in page, "viewers do not review"


def test_two_audits_are_compared_domain_by_domain(client, team, tmp_path):
    first = audits.draw(team.dataset, n_per_domain=4, query="domain=math", label="v1")
    for pair_id in first.pair_ids:
        review(pair_id, team.reviewer, pair_id == min(first.pair_ids))  # 1 of 4
    v2 = Team.create("audited v2")
    load(v2, tmp_path)
    second = audits.draw(v2.dataset, n_per_domain=4, query="domain=math", label="v2")
    for pair_id in second.pair_ids:
        review(pair_id, v2.reviewer, True)  # 4 of 4
    rows = {r["domain"]: r for r in audits.compare(first, second)}
    assert rows["math"]["difference"]["value"] == pytest.approx(0.75)
    low, high = rows["math"]["difference"]["interval"]
    assert low < 0.75 < high
    # Someone who sees only one of the two datasets cannot compare them.
    client.force_login(team.reviewer)
    url = reverse("audit-compare") + f"?a={first.pk}&b={second.pk}"
    assert client.get(url).status_code == 404
    client.force_login(v2.admin)
    team.dataset.memberships.create(user=v2.admin, role="viewer")
    page = client.get(url).content.decode()
    assert 'data-difference="0.7500"' in page


def test_the_audit_is_a_review_queue_with_its_own_overlap(client, team):
    audit = audits.draw(team.dataset, n_per_domain=1, reviews_per_pair=2, seed=3)
    url = reverse("review-queue", args=[team.dataset.pk]) + f"?audit={audit.pk}"
    seen = {}
    for person in (team.reviewer, team.admin):
        client.force_login(person)
        while True:
            page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
            pair = re.search(r'data-pair="(\d*)"', page).group(1)
            if not pair:
                break
            seen.setdefault(int(pair), []).append(person.username)
            client.post(reverse("review-submit", args=[team.dataset.pk]),
                        {"pair": pair, "queue": f"audit={audit.pk}", "verdict": "a", "better_correct": "on"},
                        HTTP_HX_REQUEST="true")
    assert sorted(seen) == sorted(audit.pair_ids)
    assert all(len(names) == 2 for names in seen.values())
    other = Team.create("elsewhere")
    client.force_login(team.admin)
    assert client.get(reverse("review-queue", args=[team.dataset.pk]) + "?audit=999999").status_code == 404
    foreign = audits.draw(team.dataset, n_per_domain=1)
    Audit.objects.filter(pk=foreign.pk).update(dataset=other.dataset)
    assert client.get(reverse("review-queue", args=[team.dataset.pk]) + f"?audit={foreign.pk}").status_code == 404


def test_admins_draw_audits_from_the_page(client, team):
    client.force_login(team.admin)
    response = client.post(reverse("audit-create", args=[team.dataset.pk]),
                           {"label": "第一版", "n_per_domain": "3", "reviews_per_pair": "2", "seed": "5",
                            "status": ["pending"]})
    audit = Audit.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("audit-detail", args=[audit.pk])
    assert len(audit.pair_ids) == 18 and audit.label == "第一版" and audit.seed == 5
    assert audit.query == "status=pending"
    response = client.post(reverse("audit-create", args=[team.dataset.pk]),
                           {"n_per_domain": "3", "reviews_per_pair": "2", "seed": "5", "domain": "nope"})
    assert response.status_code == 400 and Audit.objects.count() == 1
    assert "nope is not one of the available choices" in response.content.decode()
    response = client.post(reverse("audit-create", args=[team.dataset.pk]),
                           {"n_per_domain": "3", "reviews_per_pair": "2", "seed": "5", "status": ["withdrawn"]})
    assert response.status_code == 400 and "No sample drawn" in response.content.decode()


def test_the_form_draws_from_a_selection_domains_and_statuses(client, team):
    math = Pair.objects.filter(dataset=team.dataset, domain="math").order_by("pk")
    Pair.objects.filter(pk=math[0].pk).update(status="filtered")
    client.force_login(team.admin)
    response = client.post(reverse("audit-create", args=[team.dataset.pk]),
                           {"n_per_domain": "2", "reviews_per_pair": "1", "seed": "0", "view": "length-ratio",
                            "domain": ["math", "code"], "status": ["pending"]})
    # No pair of the generated data has a 10× length ratio: the selection is applied, not ignored.
    assert response.status_code == 400 and "No sample drawn" in response.content.decode()
    response = client.post(reverse("audit-create", args=[team.dataset.pk]),
                           {"n_per_domain": "2", "reviews_per_pair": "1", "seed": "0",
                            "domain": ["math", "code"], "status": ["pending"]})
    audit = Audit.objects.get()
    assert audit.query == "domain=math&domain=code&status=pending"
    drawn = Pair.objects.filter(pk__in=audit.pair_ids)
    assert sorted(drawn.values_list("domain", flat=True)) == ["code", "code", "math", "math"]
    assert math[0].pk not in audit.pair_ids


def test_a_sample_larger_than_a_domain_is_refused_until_the_user_agrees_to_take_it_whole(client, team):
    Pair.objects.filter(pk=Pair.objects.filter(dataset=team.dataset, domain="code").first().pk).update(
        status="filtered")
    client.force_login(team.admin)
    data = {"n_per_domain": "4", "reviews_per_pair": "2", "seed": "0", "status": ["pending", "kept"]}
    response = client.post(reverse("audit-create", args=[team.dataset.pk]), data)
    assert response.status_code == 400 and not Audit.objects.exists()
    assert "Fewer than 4 pairs in Code (3)" in response.content.decode()
    response = client.post(reverse("audit-create", args=[team.dataset.pk]), {**data, "whole_strata": "on"})
    audit = Audit.objects.get()
    assert response.status_code == 302 and len(audit.pair_ids) == 23
    page = client.get(reverse("audit-detail", args=[audit.pk])).content.decode()
    assert page.count('class="tag whole-stratum"') == 1


def test_comparing_defaults_to_the_two_newest_audits(client, team):
    older = audits.draw(team.dataset, n_per_domain=1, label="older")
    newer = audits.draw(team.dataset, n_per_domain=1, seed=3, label="newer")
    client.force_login(team.viewer)
    html = client.get(reverse("audit-list", args=[team.dataset.pk])).content.decode()
    first = re.search(r'<select name="a">(.*?)</select>', html, re.S).group(1)
    second = re.search(r'<select name="b">(.*?)</select>', html, re.S).group(1)
    assert re.search(rf'value="{older.pk}" selected', first) and f'value="{newer.pk}" selected' not in first
    assert re.search(rf'value="{newer.pk}" selected', second)


@pytest.mark.parametrize("role,create,detail,listing", [
    ("admin", 302, 200, 200), ("reviewer", 403, 200, 200), ("viewer", 403, 200, 200), ("outsider", 404, 404, 404)])
def test_audit_access(client, team, role, create, detail, listing):
    audit = audits.draw(team.dataset, n_per_domain=1)
    client.force_login(getattr(team, role))
    data = {"n_per_domain": "1", "reviews_per_pair": "2", "seed": "0"}
    assert client.post(reverse("audit-create", args=[team.dataset.pk]), data).status_code == create
    assert client.get(reverse("audit-detail", args=[audit.pk])).status_code == detail
    assert client.get(reverse("audit-list", args=[team.dataset.pk])).status_code == listing

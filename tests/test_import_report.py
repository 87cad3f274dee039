"""The import report on an import's job page, the near-duplicate and contamination lists, and
the dataset page's flags: who may see them, and what they show."""

import pytest
from django.core.management import call_command

from annotation.models import Job, Membership, NearDuplicateGroup, Role

from .helpers import write_jsonl
from .test_near_duplicates import ALIGNBENCH, CONTAMINATED, DPO, PUNCTUATION, import_alignbench, pair_with_query

HOSTILE = "<script>alert('x')</script>请解释一下这个概念，并给出三个生活中的例子，越详细越好"


@pytest.fixture
def imported(team, tmp_path):
    import_alignbench(tmp_path)
    rows = DPO[:46] + [
        pair_with_query(DPO[45], PUNCTUATION),
        pair_with_query(DPO[1], HOSTILE),
        pair_with_query(DPO[2], HOSTILE + "谢谢"),
        pair_with_query(DPO[0], CONTAMINATED[341]),
        dict(DPO[3], domain="天文"),
        "{broken json",
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    call_command("import_pairs", str(path), dataset=team.dataset.name, no_progress=True)
    return Job.objects.get(kind="import", dataset=team.dataset)


def page(client, user, url):
    client.force_login(user)
    return client.get(url)


def test_the_import_report_shows_labelled_counts_domains_rate_and_rejected_rows(client, team, imported):
    html = page(client, team.viewer, f"/jobs/{imported.pk}/").content.decode()
    for label in ("Rows read", "Pairs created", "Prompts created", "Responses created", "Duplicate pairs (skipped)",
                  "Rejected rows"):
        assert f"<dt>{label}</dt>" in html
    assert "<dt>imported_pairs</dt>" not in html
    assert 'id="import-by-domain"' in html and "<td>Other</td>" in html
    assert "天文 (1)" in html
    assert "pairs/s" in html and "MB/s" in html
    assert "malformed JSON" in html and f"/jobs/{imported.pk}/errors.csv" in html


def test_the_import_report_shows_the_follow_up_check_and_links_to_the_flags(client, team, imported):
    follow_up = Job.objects.get(kind="near_duplicates", params__after_import=imported.pk)
    html = page(client, team.viewer, f"/jobs/{imported.pk}/").content.decode()
    assert f'data-follow-up-status="{follow_up.status}"' in html and follow_up.status == Job.Status.SUCCEEDED
    assert "<dt>Near-duplicate groups</dt><dd>2</dd>" in html
    assert "<dt>Prompts matching a benchmark item</dt><dd>1</dd>" in html
    assert f"/datasets/{team.dataset.pk}/near-duplicates/" in html
    assert f"/datasets/{team.dataset.pk}/contamination/" in html


def test_outsiders_get_404_and_anonymous_users_the_login_page(client, team, imported):
    for url in (f"/jobs/{imported.pk}/", f"/datasets/{team.dataset.pk}/near-duplicates/",
                f"/datasets/{team.dataset.pk}/contamination/"):
        assert page(client, team.outsider, url).status_code == 404
        client.logout()
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_group_list_shows_each_group_with_escaped_queries(client, team, imported):
    response = page(client, team.viewer, f"/datasets/{team.dataset.pk}/near-duplicates/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="card near-duplicate-group"') == NearDuplicateGroup.objects.filter(dataset=team.dataset).count() == 2
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert 'id="near-duplicate-run"' not in html  # viewers cannot start a check


def test_the_contamination_list_names_the_benchmark_item_to_its_members_only(client, team, imported):
    html = page(client, team.viewer, f"/datasets/{team.dataset.pk}/contamination/").content.decode()
    assert CONTAMINATED[341][:20] in html
    bench = imported.dataset.__class__.objects.get(name="AlignBench")
    # Not even the benchmark's name or its prompt ids reach a user who is not a member of it.
    assert ALIGNBENCH[341][:20] not in html and "AlignBench" not in html
    assert "(a benchmark you are not a member of)" in html
    assert not any(f"#{pk}<" in html for pk in bench.prompts.values_list("pk", flat=True))
    Membership.objects.create(dataset=bench, user=team.viewer, role=Role.VIEWER)
    html = page(client, team.viewer, f"/datasets/{team.dataset.pk}/contamination/").content.decode()
    assert ALIGNBENCH[341][:20] in html and "AlignBench · #" in html


def test_the_dataset_page_shows_group_and_contamination_counts(client, team, imported):
    html = page(client, team.viewer, f"/datasets/{team.dataset.pk}/").content.decode()
    assert '<span class="stat" data-count="groups">2</span>' in html
    assert '<span class="stat" data-count="contaminated">1</span>' in html


def test_only_admins_start_a_check_and_only_by_post(client, team, imported):
    url = f"/datasets/{team.dataset.pk}/near-duplicates/run/"
    assert page(client, team.reviewer, url).status_code == 405
    client.force_login(team.reviewer)
    assert client.post(url, {"threshold": "0.8"}).status_code == 403
    client.force_login(team.outsider)
    assert client.post(url, {"threshold": "0.8"}).status_code == 404
    client.force_login(team.admin)
    assert client.post(url, {"threshold": "7"}).status_code == 400
    before = Job.objects.filter(kind="near_duplicates").count()
    response = client.post(url, {"threshold": "0.9"})
    job = Job.objects.filter(kind="near_duplicates").latest("pk")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert Job.objects.filter(kind="near_duplicates").count() == before + 1
    assert job.params["threshold"] == 0.9 and job.created_by == team.admin


def test_admins_find_the_check_on_the_dataset_page_and_viewers_do_not(client, team, imported):
    html = page(client, team.admin, f"/datasets/{team.dataset.pk}/").content.decode()
    assert f'action="/datasets/{team.dataset.pk}/near-duplicates/run/"' in html
    html = page(client, team.viewer, f"/datasets/{team.dataset.pk}/").content.decode()
    assert "near-duplicates/run/" not in html


def test_a_large_group_shows_its_twenty_closest_members_and_how_many_more(client, team):
    from annotation.models import NearDuplicateMember, Prompt

    group = NearDuplicateGroup.objects.create(dataset=team.dataset, threshold=0.8, size=25)
    for i in range(25):
        prompt = Prompt.objects.create(dataset=team.dataset, messages=[{"role": "user", "content": f"问题{i}"}],
                                       query=f"问题{i}", content_hash=f"00000000-0000-0000-0000-{i:012d}")
        NearDuplicateMember.objects.create(group=group, prompt=prompt, similarity=0.8 + i / 200)
    html = page(client, team.viewer, f"/datasets/{team.dataset.pk}/near-duplicates/").content.decode()
    assert html.count("<tr><td>") == 20
    assert "问题24" in html and "问题4<" not in html  # the most similar are shown
    assert "… and 5 more prompts." in html

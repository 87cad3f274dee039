"""Schemathesis against the schema the app serves (/api/schema/): generated calls to every operation, with
a dataset admin's token, must never get a 5xx, and every answer must match the schema (status code, content
type, body). Calls go over HTTP to a live server on the test database; jobs they start go to this test
session's own broker queue (no worker takes them)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.tokens import create_token

from .helpers import Team
from .judged import imported_pair, scored_prompt

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(live_server, celery_test_config, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.API_THROTTLE_RATE = "100000/minute"
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


@pytest.fixture
def admin_token(transactional_db):
    team = Team.create("schemathesis")
    made = scored_prompt(team.dataset, "问题", {"good": {"j1": 9}, "bad": {"j1": 3}})
    imported_pair(team.dataset, made["good"], made["bad"])
    return create_token(team.admin, "schemathesis")[1]


# Run by hand over the loaded schema's operations: schemathesis' pytest plugin (from_fixture) fails on pytest 9.
def test_the_api_answers_as_its_schema_says(api_schema, admin_token):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 28  # every method of every path in api/urls.py
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def answers_as_described(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)

        try:
            answers_as_described()
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path}: {exc}") from exc


def test_the_schema_is_served_and_describes_every_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["token"] == {
        "type": "http", "scheme": "bearer",
        "description": "A personal API token, made on the API tokens page (/settings/tokens/)."}
    paths = set(spec["paths"])
    for path in ("/api/v1/datasets/", "/api/v1/datasets/{id}/imports/", "/api/v1/datasets/{id}/pairs/",
                 "/api/v1/datasets/{id}/pairs/{pair_pk}/", "/api/v1/jobs/{id}/cancel/", "/api/v1/datasets/{id}/exports/",
                 "/api/v1/exports/{id}/files/{filename}", "/api/v1/datasets/{id}/reviews/"):
        assert path in paths, path
    pair_list = {p["name"] for p in spec["paths"]["/api/v1/datasets/{id}/pairs/"]["get"]["parameters"]}
    assert {"view", "domain", "status", "q", "judge", "gap_min", "margin_max", "verdict", "order", "after"} <= pair_list

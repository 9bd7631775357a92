"""The OpenAPI document and the docs page that renders it."""

from __future__ import annotations

import re

import yaml
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from tests.helpers.api import API, assert_error


def schema(client) -> dict:
    response = client.get(API + "schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_the_schema_is_a_valid_openapi_3_document_of_the_api(as_charlie):
    document = schema(as_charlie)
    validate_schema(document)  # raises on an invalid document
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Muster API"
    for path in (
        "/api/v1/incidents/",
        "/api/v1/incidents/{number}/acknowledge/",
        "/api/v1/incidents/{number}/timeline/",
        "/api/v1/alerts/",
        "/api/v1/integrations/{id}/rotate/",
        "/api/v1/silences/",
        "/api/v1/tokens/",
        "/api/v1/me/",
    ):
        assert path in document["paths"], path


def test_the_schema_is_served_as_yaml_by_default(as_charlie):
    response = as_charlie.get(API + "schema/")
    assert response.status_code == 200
    assert "/api/v1/incidents/" in yaml.safe_load(response.content)["paths"]


def test_the_schema_documents_bearer_tokens(as_charlie):
    document = schema(as_charlie)
    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearerAuth"].items()
    ack = document["paths"]["/api/v1/incidents/{number}/acknowledge/"]["post"]
    assert {"bearerAuth": []} in ack["security"]


def test_the_schema_describes_what_each_incident_action_takes_and_returns(as_charlie):
    paths = schema(as_charlie)["paths"]
    ack = paths["/api/v1/incidents/{number}/acknowledge/"]["post"]
    assert "requestBody" not in ack  # acknowledging takes no arguments
    assert ack["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Incident"
    }
    snooze = paths["/api/v1/incidents/{number}/snooze/"]["post"]
    assert snooze["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Snooze"
    }
    for path, operations in paths.items():
        for operation in operations.values():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert names == (["number"] if "{number}" in path else names), (path, names)
    number = next(p for p in ack["parameters"] if p["name"] == "number")
    assert number["schema"]["type"] == "integer"
    timeline = paths["/api/v1/incidents/{number}/timeline/"]["get"]
    page = timeline["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/PaginatedTimelineEntryList"}


def test_the_schema_types_the_computed_fields(as_charlie):
    components = schema(as_charlie)["components"]["schemas"]
    incident = components["Incident"]["properties"]
    assert incident["acknowledged_by"]["type"] == "string"
    assert incident["acknowledged_by"]["nullable"] is True
    assert incident["merged_into"]["type"] == "integer"
    assert incident["service"]["allOf"] == [{"$ref": "#/components/schemas/ServiceRef"}]
    integration = components["Integration"]["properties"]
    assert integration["has_hmac_secret"]["type"] == "boolean"
    assert integration["hmac_secret"]["writeOnly"] is True
    assert components["Silence"]["properties"]["active"]["type"] == "boolean"
    matchers = components["RoutingRule"]["properties"]["matchers"]
    assert matchers["type"] == "array"


def test_the_schema_needs_authentication(client, db):
    response = client.get(API + "schema/")
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_docs_page_renders_with_no_external_references(as_charlie):
    response = as_charlie.get(API + "docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="swagger-ui"' in html
    # Its start-up script is a file of its own (no inline script, for the CSP).
    assert '<script src="/api/v1/docs/?script="></script>' in html
    assert "<script>" not in html
    script = as_charlie.get(API + "docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""", html)
    assert external == []
    assert not re.search(r"cdn|jsdelivr|unpkg|cloudflare", html, re.IGNORECASE)


def test_the_docs_page_needs_authentication_and_answers_in_json(client, db):
    response = client.get(API + "docs/")
    assert_error(response, 401)


def test_generating_the_schema_raises_no_warnings(capsys):
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS, capsys.readouterr().err


def test_every_operation_documents_its_refusals_in_the_error_shape(as_charlie):
    # Found by the schema fuzzing (test_fuzz_schema.py): no error status was documented, so
    # every 400, 401, 403, 404 and 409 the API answered was "undocumented".
    document = schema(as_charlie)
    error = {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            expected = {"401", "403"}
            if "{" in path:
                expected.add("404")
            if method in ("post", "put", "patch", "delete"):
                expected |= {"400", "409", "415"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                content = responses[status]["content"]["application/json"]
                assert content["schema"] == error, (method, path, status)


def test_the_served_schema_is_the_one_the_fuzzing_reads(as_charlie):
    served = schema(as_charlie)
    assert served == SchemaGenerator().get_schema(request=None, public=True)

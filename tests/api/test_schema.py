"""The OpenAPI schema (drf-spectacular, from the code, no warnings) at /api/schema/ as YAML or JSON,
and the interactive docs at /api/docs/ served from local static files under the strict CSP."""

from __future__ import annotations

import os

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client


def test_the_schema_is_generated_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)


def test_the_schema_is_yaml_by_default_and_json_on_request(db):
    client = Client()
    as_yaml = client.get("/api/schema/")
    assert as_yaml.status_code == 200 and as_yaml["Content-Type"].startswith(
        "application/vnd.oai.openapi;"
    )
    schema = yaml.safe_load(as_yaml.content)
    assert schema["openapi"].startswith("3.") and "/api/v1/memories" in schema["paths"]

    as_json = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert as_json.status_code == 200 and as_json["Content-Type"].startswith("application/json")
    assert as_json.json()["paths"].keys() == schema["paths"].keys()


def test_every_operation_documents_the_error_shape(db):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("400", "401", "404", "429", "default"):
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code)


def test_the_docs_page_uses_local_files_only_under_the_csp(db):
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "https://" not in html and "<style" not in html and "<script>" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp

    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    assert "/api/schema/" in script.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        "css/api_docs.css",
    ],
)
def test_the_docs_static_files_are_shipped(path):
    assert finders.find(path)


def test_every_operation_names_the_scope_it_requires(db):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "Scope: `context:read`." in schema["paths"]["/api/v1/context"]["post"]["description"]
    assert "Scope: `chat`." in schema["paths"]["/api/v1/chat"]["post"]["description"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "Scope: `" in operation.get("description", ""), (method, path)

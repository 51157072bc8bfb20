"""The API description and its interactive page, served entirely by fieldsvc."""

from __future__ import annotations

import re

import pytest

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def test_every_api_route_is_described_with_a_summary(app, spec):
    described = {
        (method.upper(), path) for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in METHODS and operation.get("summary")
    }
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (method, path) not in described:
                missing.append(f"{method} {path}")
    assert not missing, f"routes without an OpenAPI summary: {missing}"


def test_caravan_endpoints_have_examples(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS or not (
                "caravans" in operation.get("tags", []) or path == "/api/v1/audit"
            ):
                continue
            bodies = [operation.get("requestBody", {})] + list(operation["responses"].values())
            examples = [media for body in bodies for media in body.get("content", {}).values()
                        if "example" in media or "examples" in media]
            assert examples, f"{method.upper()} {path} has no example"
    site = spec["components"]["schemas"]["SiteIn"]["properties"]["location"]
    assert "example" in site and "Morocco" in site["description"]


def test_docs_page_uses_only_its_own_files_and_no_inline_script(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all(body.strip() == "" and "src=" in attrs for attrs, body in scripts)
    assert "style=" not in html and "<style" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for url in assets:
        assert url.startswith("/"), f"{url} is not served by fieldsvc"
        with client.get(url) as response:
            assert response.status_code == 200, url
    assert 'data-spec-url="/api/openapi.json"' in html
    with client.get("/api/docs/assets/api-docs.js") as response:
        script = response.get_data(as_text=True)
    assert "SwaggerUIBundle" in script and "validatorUrl: null" in script
    with client.get("/api/docs/assets/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200 and len(bundle.data) > 500_000
    assert client.get("/api/docs/assets/../../config.py").status_code == 404
    assert client.get("/api/docs/assets/index.html").status_code == 404

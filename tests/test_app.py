"""The foundation: health, problem+json errors, deny-by-default routes."""

from fieldsvc.security import PUBLIC_ENDPOINTS, allowed_roles


def test_healthz_reports_database_and_migrations(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["migrations"] == "head"


def test_unknown_api_path_is_problem_json(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == 404


def test_every_route_declares_who_may_call_it(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.endswith(".static"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if allowed_roles(view, method) is None:
                missing.append(f"{method} {rule.rule}")
    assert not missing, f"routes without @allow: {missing}"


def test_security_headers(client):
    response = client.get("/healthz")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_openapi_states_who_may_call_each_operation(client):
    spec = client.get("/api/openapi.json").json
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert operations
    for path, method, operation in operations:
        assert "security" in operation, f"{method} {path}"
        assert "Allowed:" in operation.get("description", ""), f"{method} {path}"

"""The API docs page: "use my session" (a short-lived token, CSRF-checked) and the real errors."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from fieldsvc.accounts.models import ApiToken
from fieldsvc.extensions import db
from tests.factories import make_areas, make_user
from tests.web.test_pages import HTML, log_in

BODY = {"title": "Caravane médicale de Zagora", "commune": "08.587.01.13",
        "first_day": "2026-11-27", "last_day": "2026-11-28", "specialties": ["OPH"]}


def _docs_csrf(client) -> str:
    page = client.get("/api/docs", headers=HTML).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)


def test_anonymous_docs_page_explains_the_token_steps(client):
    page = client.get("/api/docs", headers=HTML).get_data(as_text=True)
    assert "-X POST http://localhost/api/v1/tokens" in page
    assert "Authorize" in page and 'id="use-session"' not in page


def test_use_my_session_gives_a_short_lived_token_that_writes(app, client):
    make_areas()
    make_user("coordinator", username="amina", regions=["08"])
    db.session.commit()
    assert log_in(client, "amina").status_code == 302
    page = client.get("/api/docs", headers=HTML).get_data(as_text=True)
    assert 'id="use-session"' in page and "amina" in page
    # A session cannot write through the API by itself: that is what the button is for.
    assert client.post("/api/v1/caravans", json=BODY).status_code == 401

    refused = client.post("/api-token", headers={"Accept": "application/json"})
    assert refused.status_code == 400  # no CSRF token: nothing issued
    assert db.session.scalars(select(ApiToken)).all() == []

    response = client.post("/api-token", headers={"X-CSRFToken": _docs_csrf(client),
                                                  "Accept": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    expires = dt.datetime.fromisoformat(response.json["expires_at"])
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=14) < left <= dt.timedelta(minutes=15)
    bearer = {"Authorization": f"Bearer {response.json['token']}"}
    assert client.post("/api/v1/caravans", json=BODY, headers=bearer).status_code == 201
    # A bearer token does not mint another one here.
    again = client.post("/api-token", headers={**bearer, "X-CSRFToken": _docs_csrf(client)})
    assert again.status_code == 403


def test_openapi_describes_errors_as_problem_documents(client):
    spec = client.get("/api/openapi.json").json
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(default) == ["application/problem+json"]
    schema = spec["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "errors"} <= set(schema)
    assert "Error" not in spec["components"]["schemas"]  # flask-smorest's {code, status, message}
    for name, response in spec["components"]["responses"].items():
        assert list(response.get("content", {})) in ([], ["application/problem+json"]), name


@pytest.mark.browser
def test_use_my_session_button_authorizes_swagger_ui(pg_app, browser):
    make_areas()
    make_user("coordinator", username="amina", regions=["08"])
    db.session.commit()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, pg_app.wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context(base_url=f"http://127.0.0.1:{port}", locale="en-GB")
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto("/login?next=/api/docs")
        page.fill("#username", "amina")
        page.fill("#password", "correct horse battery")
        page.click("form button[type=submit]")
        page.wait_for_selector("#use-session")
        page.wait_for_selector(".opblock-summary", timeout=15000)
        page.click("#use-session")
        page.wait_for_function(
            "() => document.getElementById('use-session-status').textContent.length > 0")
        assert "Authorized as amina" in page.text_content("#use-session-status")
        authorized = page.evaluate("() => window.ui.authSelectors.authorized().toJS()")
        assert authorized["bearer"]["value"].startswith("st_")
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert not problems, problems

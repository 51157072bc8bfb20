"""The API docs page in a real Chromium: Swagger UI renders under the CSP, all from fieldsvc."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser



def test_docs_page_renders_every_operation_without_csp_violations(pg_app, browser):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, pg_app.wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    problems: list[str] = []
    hosts: set[str] = set()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
        page.goto(f"{base}/api/docs")
        page.wait_for_selector(".opblock-summary", timeout=15000)
        operations = page.locator(".opblock").count()
        create = page.locator(".opblock-post", has=page.locator(
            '[data-path="/api/v1/caravans"]'))
        create.locator(".opblock-summary").click()
        create.locator(".opblock-body").wait_for(timeout=5000)
        text = create.inner_text()
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    spec = pg_app.test_client().get("/api/openapi.json").json
    expected = sum(1 for ops in spec["paths"].values() for m in ops
                   if m in {"get", "post", "put", "patch", "delete"})
    assert operations == expected
    assert "08.587.01.13" in text  # the request example is shown
    assert hosts == {f"127.0.0.1:{port}"}, hosts
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    assert not problems, problems

"""The phone form's pages, service worker, manifest, translations JSON and compression."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import pytest

from fieldsvc.web.phone_routes import PHONE_PLURALS, PHONE_STRINGS


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.lasttag == "script" and data.strip():
            self.inline_script = True


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("path", ["/app", "/join", "/join/K7QX-4MZP"])
def test_shell_is_same_origin_without_inline_code_and_labels_every_field(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = _parse(html)
    assert not page.inline_script
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "third-party reference"
    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts and all(a.get("src", "").startswith("/app/static/") for a in scripts)
    labelled = {a.get("for") for t, a in page.tags if t == "label"}
    fields = [a.get("id") for t, a in page.tags if t in ("input", "select", "textarea")]
    assert fields and all(f in labelled for f in fields), fields
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_join_link_fills_in_the_code(client):
    html = client.get("/join/K7QX-4MZP").get_data(as_text=True)
    assert 'data-join-code="K7QX-4MZP"' in html
    assert 'value="K7QX-4MZP"' in html


def test_arabic_browser_gets_rtl_arabic_shell(client):
    html = client.get("/app", headers={"Accept-Language": "ar-MA,ar;q=0.9,fr;q=0.5"}).get_data(
        as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "الانضمام إلى قافلة" in html
    html = client.get("/app", headers={"Accept-Language": "en-GB,en"}).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html and "Join a caravan" in html


def test_phone_strings_come_from_the_catalogs(client):
    bodies = {lang: client.get(f"/app/i18n/{lang}.json").json for lang in ("fr", "ar", "en")}
    for lang, body in bodies.items():
        assert set(body["strings"]) == set(PHONE_STRINGS) | set(PHONE_PLURALS), lang
        assert len(body["plural"]) == 200
    assert bodies["ar"]["dir"] == "rtl" and bodies["fr"]["dir"] == "ltr"
    assert bodies["ar"]["strings"]["join.title"] == "الانضمام إلى قافلة"
    assert bodies["fr"]["strings"]["join.title"] == "Rejoindre une caravane"
    assert bodies["en"]["strings"]["join.title"] == "Join a caravan"
    assert client.get("/app/i18n/de.json").status_code == 404


def _plural(body, key: str, n: int) -> str:
    """What the phone shows for n (app.js's tn: the catalog's form for n, {n} filled in)."""
    form = body["plural"][n if n < 200 else 100 + n % 100]
    return body["strings"][key][form].replace("{n}", str(n))


def test_phone_counts_use_each_languages_plural_forms(client):
    fr, ar, en = (client.get(f"/app/i18n/{lang}.json").json for lang in ("fr", "ar", "en"))
    key = "outbox.summary"
    assert _plural(fr, key, 1).endswith("· 1 consultation")
    assert _plural(fr, key, 0).endswith("· 0 consultation")
    assert _plural(fr, key, 2).endswith("· 2 consultations")
    assert _plural(en, key, 1).endswith("· 1 consultation")
    assert _plural(en, key, 0).endswith("· 0 consultations")
    assert _plural(ar, key, 1).endswith("فحص واحد")
    assert _plural(ar, key, 2).endswith("فحصان")
    assert _plural(ar, key, 3).endswith("3 فحوص") and _plural(ar, key, 10).endswith("10 فحوص")
    assert _plural(ar, key, 11).endswith("11 فحصًا") and _plural(ar, key, 99).endswith("99 فحصًا")
    assert _plural(ar, key, 100).endswith("100 فحص") and _plural(ar, key, 1003).endswith("1003 فحوص")


def test_service_worker_is_served_from_the_root_scope(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    body = response.get_data(as_text=True)
    assert "__VERSION__" not in body
    version = re.search(r"var VERSION = '([0-9a-f]+)'", body).group(1)
    assert f"v={version}" in client.get("/app").get_data(as_text=True)


def test_manifest_makes_the_form_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    body = response.json
    assert body["start_url"] == "/app" and body["display"] == "standalone"
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200


def test_static_files_are_gzipped_and_versioned(client):
    plain = client.get("/app/static/app.js")
    packed = client.get("/app/static/app.js?v=1", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert "immutable" in packed.headers["Cache-Control"]
    assert "Content-Encoding" not in plain.headers
    assert client.get("/app/static/../phone_routes.py").status_code == 404
    assert client.get("/app/static/sw.js").status_code == 404
    etag = packed.headers["ETag"]
    again = client.get("/app/static/app.js?v=1", headers={"Accept-Encoding": "gzip",
                                                          "If-None-Match": etag})
    assert again.status_code == 304


def test_json_answers_are_gzipped_but_writes_are_not(client):
    catalog = client.get("/api/v1/catalog", headers={"Accept-Encoding": "gzip"})
    assert catalog.headers.get("Content-Encoding") == "gzip"
    assert b"consultations" in gzip.decompress(catalog.data)
    refused = client.post("/api/v1/enrollments", json={"join_code": "NOPE"},
                          headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in refused.headers


def test_first_load_fits_the_budget_when_compressed(client):
    """The browser test measures the real figure; this catches a heavy file early."""
    html = client.get("/app", headers={"Accept-Encoding": "gzip"})
    total = len(html.data)
    for path in re.findall(r'(?:src|href)="(/[^"]+)"', gzip.decompress(html.data).decode()):
        total += len(client.get(path, headers={"Accept-Encoding": "gzip"}).data)
    for path in ("/sw.js", "/app/i18n/fr.json", "/app/i18n/ar.json", "/app/i18n/en.json",
                 "/api/v1/catalog"):
        total += len(client.get(path, headers={"Accept-Encoding": "gzip"}).data)
    assert total < 40 * 1024, total


def test_translations_json_is_revalidated_cheaply(client):
    first = client.get("/app/i18n/ar.json", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    again = client.get("/app/i18n/ar.json", headers={"Accept-Encoding": "gzip",
                                                     "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data

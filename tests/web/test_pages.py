"""Staff pages: home, login and logout, CSRF, session cookie, languages, HTML errors."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from fieldsvc import create_app
from fieldsvc.accounts.models import AuditEvent
from fieldsvc.config import ConfigError
from tests.factories import make_areas, make_user

PASSWORD = "correct horse battery"
# Pages speak the browser's language; tests read the English source strings.
HTML = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": "en"}


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path, headers=HTML).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def log_in(client, username: str, password: str = PASSWORD, **kwargs):
    return client.post("/login", data={"csrf_token": csrf_token(client), "username": username,
                                       "password": password}, headers=HTML, **kwargs)


def assert_no_inline_code(page: str) -> None:
    """The CSP forbids inline scripts and styles: the page must not need them."""
    assert "<style" not in page
    assert " style=" not in page
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert re.search(r"\son[a-z]+=", page) is None  # no onclick= and friends


def test_home_says_what_fieldsvc_is_and_links_login_and_docs(client):
    response = client.get("/", headers=HTML)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in page
    assert "medical caravans" in page
    assert 'href="/login"' in page
    assert 'href="/api/docs"' in page
    assert 'href="/static/web/web.css"' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert_no_inline_code(page)


def test_stylesheet_is_served_to_anyone(client):
    with client.get("/static/web/web.css") as response:
        assert response.status_code == 200
        assert response.content_type.startswith("text/css")
        assert b"margin-inline-start" in response.data  # right-to-left aware


def test_login_page(client):
    response = client.get("/login", headers=HTML)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'autocomplete="current-password"' in page
    assert 'type="password"' in page
    assert_no_inline_code(page)


def test_login_shows_who_you_are_and_is_audited(client, db):
    make_areas()
    user = make_user("coordinator", regions=["08", "07"], username="amina")
    db.session.commit()

    response = log_in(client, "amina")

    assert response.status_code == 302
    assert response.headers["Location"] == "/workspace/"  # their regions' caravans
    home = client.get("/", headers=HTML).get_data(as_text=True)
    assert "amina" in home
    assert "Drâa-Tafilalet (08)" in home and "Marrakech-Safi (07)" in home
    assert 'href="/login"' not in home
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.success")).all()
    assert [(e.actor_id, e.detail["method"]) for e in events] == [(str(user.id), "web")]
    # The web session also opens the API.
    assert client.get("/api/v1/me").json["username"] == "amina"


def test_planner_sees_their_organization_in_arabic(client, db):
    make_user("planner", organization="Wahat Al-Khair", username="fatima")
    db.session.commit()
    log_in(client, "fatima")
    page = client.get("/?lang=ar", headers=HTML).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert "Wahat Al-Khair" in page


def test_session_cookie_is_httponly_and_lax(client, db):
    make_user("admin", username="root")
    db.session.commit()
    response = log_in(client, "root")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in development; see the TLS test below


def test_wrong_password_stays_on_the_form_and_is_audited(client, db):
    make_user("admin", username="root")
    db.session.commit()

    response = log_in(client, "root", "not the password")

    assert response.status_code == 200
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401
    failed = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "login.fail")).all()
    assert [f.object_id for f in failed] == ["root"]


def test_empty_form_asks_for_both_fields(client):
    response = client.post("/login", data={"csrf_token": csrf_token(client)}, headers=HTML)
    assert response.status_code == 200
    assert "Enter your username and password." in response.get_data(as_text=True)


def test_web_logins_are_throttled_too(client, db):
    make_user("admin", username="root")
    db.session.commit()
    for _ in range(5):
        assert log_in(client, "root", "guess").status_code == 200
    response = log_in(client, "root")
    assert response.status_code == 429
    assert 55 <= int(response.headers["Retry-After"]) <= 60
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401


def test_login_post_without_csrf_token_is_refused(client, db):
    make_user("admin", username="root")
    db.session.commit()

    response = client.post("/login", data={"username": "root", "password": PASSWORD},
                           headers=HTML)

    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401
    forged = client.post("/login", data={"username": "root", "password": PASSWORD,
                                         "csrf_token": "forged"}, headers=HTML)
    assert forged.status_code == 400
    # With the token from the form it works.
    assert log_in(client, "root").status_code == 302


@pytest.mark.parametrize("target, expected", [
    ("/api/v1/me", "/api/v1/me"),
    ("//evil.example/phish", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
])
def test_login_follows_next_only_on_this_site(client, db, target, expected):
    make_user("admin", username="root")
    db.session.commit()
    response = client.post(f"/login?next={target}", data={
        "csrf_token": csrf_token(client), "username": "root", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_logout_needs_a_post_with_the_token(client, db):
    make_user("admin", username="root")
    db.session.commit()
    log_in(client, "root")
    token = csrf_token(client, "/")  # the logout button's form

    assert client.get("/logout", headers=HTML).status_code == 405
    assert client.post("/logout", headers=HTML).status_code == 400
    assert client.get("/api/v1/me").status_code == 200

    response = client.post("/logout", data={"csrf_token": token}, headers=HTML)

    assert response.status_code == 302
    assert client.get("/api/v1/me").status_code == 401
    assert "You are logged out." in client.get("/", headers=HTML).get_data(as_text=True)
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["user.create", "login.success", "logout"]


def test_language_is_chosen_with_lang_and_remembered(client):
    assert '<html lang="ar" dir="rtl">' in client.get("/?lang=ar").get_data(as_text=True)
    # Remembered for the next pages, without ?lang=.
    assert '<html lang="ar" dir="rtl">' in client.get("/login").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in client.get("/").get_data(as_text=True)


def test_french_without_a_preference(client):
    assert '<html lang="fr" dir="ltr">' in client.get("/").get_data(as_text=True)


def test_browser_language_is_the_default(client):
    page = client.get("/", headers={"Accept-Language": "ar-MA,ar;q=0.9"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page


def test_language_links_keep_the_page(client):
    page = client.get("/login?next=/api/v1/me").get_data(as_text=True)
    assert 'href="/login?next=/api/v1/me&amp;lang=ar"' in page


def test_language_survives_login(client, db):
    make_user("admin", username="root")
    db.session.commit()
    client.get("/?lang=ar")
    log_in(client, "root")
    assert '<html lang="ar" dir="rtl">' in client.get("/").get_data(as_text=True)


def test_html_404_and_405_are_pages(client):
    missing = client.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404
    assert missing.content_type.startswith("text/html")
    assert "Page not found" in missing.get_data(as_text=True)
    wrong_method = client.delete("/login", headers=HTML)
    assert wrong_method.status_code == 405
    assert "Not allowed here" in wrong_method.get_data(as_text=True)
    arabic = client.get("/no-such-page?lang=ar", headers=HTML).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in arabic
    # API clients still get problem+json.
    api = client.get("/api/v1/no-such-thing", headers=HTML)
    assert api.content_type == "application/problem+json"


def test_pages_carry_the_security_headers(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_secure_cookie_behind_tls(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "SESSION_COOKIE_SECURE": True,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})
    response = app.test_client().get("/login")  # the CSRF token starts the session
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_production_refuses_to_start_without_a_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("FIELDSVC_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()

    monkeypatch.setenv("SECRET_KEY", "x" * 31)  # 31 bytes: too short to sign sessions
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        create_app()

    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret-key-of-64-characters")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


@pytest.mark.parametrize("target", ["/x%0d%0aSet-Cookie:%20evil=1", "/x%0aLocation:%20/evil",
                                    "/%09/evil.example", "/x%c2%85"])
def test_next_with_control_characters_is_refused_before_logging_in(client, db, target):
    make_user("admin", username="root")
    db.session.commit()
    response = client.post(f"/login?next={target}", data={
        "csrf_token": csrf_token(client), "username": "root", "password": PASSWORD},
        headers=HTML)
    assert response.status_code == 400
    assert "This login link is damaged" in response.get_data(as_text=True)
    assert "evil" not in response.headers.get("Set-Cookie", "")
    assert client.get("/api/v1/me").status_code == 401  # no session was opened
    events = db.session.scalars(select(AuditEvent.action)).all()
    assert "login.success" not in events and "login.fail" not in events

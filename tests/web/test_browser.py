"""Staff pages in a real Chromium at phone width (360 px), on PostgreSQL, once."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from fieldsvc.extensions import db
from tests.factories import make_areas, make_user

pytestmark = pytest.mark.browser



@pytest.fixture
def live(pg_app: Flask) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, pg_app.wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def phone(browser, live):
    """A 360 x 640 page; script errors and CSP violations are collected in page.problems."""
    context = browser.new_context(base_url=live, viewport={"width": 360, "height": 640},
                                   locale="fr-FR")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text
            else None)
    page.problems = problems
    yield page
    context.close()


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("lang, direction", [("fr", "ltr"), ("ar", "rtl"), ("en", "ltr")])
def test_pages_fit_a_phone_in_every_language(phone, lang, direction):
    for path in ("/", "/login", "/no-such-page"):
        phone.goto(f"{path}?lang={lang}")
        assert phone.get_attribute("html", "lang") == lang
        assert phone.get_attribute("html", "dir") == direction
        assert fits_the_screen(phone), f"{path} in {lang} scrolls sideways at 360 px"
    # The stylesheet applied (not blocked by the CSP): the login button has the accent colour.
    phone.goto(f"/login?lang={lang}")
    colour = phone.eval_on_selector("form.stack button", "b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(11, 110, 79)"
    assert phone.problems == []


def test_log_in_and_out_in_a_browser(pg_app, phone):
    make_areas()
    make_user("coordinator", regions=["08", "07"], username="amina")
    db.session.commit()

    phone.goto("/?lang=ar")
    phone.click("a[href='/login']")
    phone.fill("#username", "amina")
    phone.fill("#password", "wrong password")
    phone.click("form.stack button[type=submit]")
    phone.wait_for_selector("#login-error")
    assert phone.get_attribute("html", "dir") == "rtl"  # the language stayed chosen

    phone.fill("#password", "correct horse battery")
    phone.click("form.stack button[type=submit]")
    phone.wait_for_url("**/")
    assert "amina" in phone.inner_text("main")
    assert "(08)" in phone.inner_text("main")
    assert fits_the_screen(phone)
    cookie = next(c for c in phone.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    phone.click(".site-nav button[type=submit]")  # log out
    phone.wait_for_selector("a[href='/login']")
    assert "amina" not in phone.inner_text("main")
    assert phone.problems == []

"""The phone form in a real Chromium (Playwright), against a real server on PostgreSQL.

Run once, on PostgreSQL (`-m browser`); the page weight of a first visit is printed.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from werkzeug.serving import WSGIRequestHandler, make_server

from fieldsvc.caravans.models import Enrollment
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine
from tests.factories import auth, make_areas, make_caravan, make_user

pytestmark = pytest.mark.browser

BUDGET_BYTES = 60 * 1024
TODAY = dt.date.today()
DAY_1, DAY_2, LATER = TODAY - dt.timedelta(days=1), TODAY, TODAY + dt.timedelta(days=2)


class _OneRequestPerConnection(WSGIRequestHandler):
    # Closing every connection makes "server stopped" mean stopped (no kept-alive sockets).
    protocol_version = "HTTP/1.0"

    def log_request(self, *args, **kwargs) -> None:
        pass


class LiveServer:
    """The app on a real socket; counts the bytes it sends (status line, headers, body)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sent_bytes = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = None

    def _counting(self, environ, start_response):
        def counted_start(status, headers, exc_info=None):
            self._add(len(status) + 11 + sum(len(k) + len(v) + 4 for k, v in headers))
            return start_response(status, headers, exc_info)

        with self._lock:
            self.paths.append(environ.get("PATH_INFO", ""))
        body = self.app.wsgi_app(environ, counted_start)
        try:
            for chunk in body:
                self._add(len(chunk))
                yield chunk
        finally:  # as any WSGI server does: a file answer closes its file here
            if hasattr(body, "close"):
                body.close()

    def _add(self, n: int) -> None:
        with self._lock:
            self.sent_bytes += n

    def reset_counter(self) -> None:
        with self._lock:
            self.sent_bytes = 0
            self.paths = []

    def start(self) -> None:
        self._server = make_server("127.0.0.1", self.port, self._counting, threaded=True,
                                   request_handler=_OneRequestPerConnection)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def live(pg_app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(pg_app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def caravan(pg_app: Flask):
    make_areas()
    caravan = make_caravan(join_code="ZAG7K2", specialties=("GEN", "OPH", "PED"),
                           first_day=DAY_1, last_day=LATER, status="active")
    db.session.commit()
    return caravan


_PAGE_ERRORS: list[str] = []


def _context(browser, live: LiveServer, locale: str = "fr-FR"):
    """A 360 x 640 phone; script errors and CSP violations are collected in _PAGE_ERRORS."""
    context = browser.new_context(base_url=live.url, viewport={"width": 360, "height": 640},
                                  locale=locale, service_workers="allow")
    _PAGE_ERRORS.clear()

    def watch(page) -> None:
        page.on("pageerror", lambda error: _PAGE_ERRORS.append(f"pageerror: {error}"))
        page.on("console", lambda m: _PAGE_ERRORS.append(m.text)
                if "Content Security Policy" in m.text else None)

    context.on("page", watch)
    return context


def _assert_no_page_errors() -> None:
    assert not _PAGE_ERRORS, _PAGE_ERRORS


def _join(page, name: str = "Dr Amina", specialty: str = "OPH") -> None:
    page.fill("#join-name", name)
    page.select_option("#join-specialty", specialty)
    page.click("#join-form button[type=submit]")
    page.wait_for_selector("#view-setup:not([hidden])")


def _wait_for_service_worker(page) -> None:
    page.wait_for_function(
        "() => navigator.serviceWorker && navigator.serviceWorker.controller !== null",
        timeout=15000)


def _tally(page, cells: dict[tuple[str, str, str], int], day: dt.date = DAY_1,
           warning: str | None = None) -> None:
    page.click("#nav-tally")  # opens the setup, or the tally in progress
    page.wait_for_selector("#view-setup:not([hidden]), #view-grid:not([hidden])")
    if page.is_visible("#view-setup"):
        page.select_option("#setup-day", day.isoformat())
        page.click("#setup-form button[type=submit]")
        page.wait_for_selector("#view-grid:not([hidden])")
    for (measure, sex, age), count in cells.items():
        if not page.is_visible(f'#grid input[data-key="{measure}|{sex}|{age}|"]'):
            page.click(f'#grid details[data-measure="{measure}"] > summary')
        page.fill(f'#grid input[data-key="{measure}|{sex}|{age}|"]', str(count))
    page.click("#to-review")
    page.wait_for_selector("#view-review:not([hidden])")
    if warning:  # plausibility is checked on the phone before sending; the doctor may still send
        page.wait_for_selector("#warnings:not([hidden])")
        assert warning in page.text_content("#warnings")
    page.click("#review-send")
    page.wait_for_selector("#view-review", state="hidden")


def _count_status(page, status: str) -> int:
    return page.locator(f'#outbox-list li[data-status="{status}"]').count()


def _wait_for_status(page, status: str, n: int, timeout: float = 15000) -> None:
    page.wait_for_function(
        "(s) => document.querySelectorAll(`#outbox-list li[data-status=\"${s[0]}\"]`).length"
        " === s[1]", arg=[status, n],
        timeout=timeout)


def _eventually(page, probe, expected, timeout_s: float = 15.0):
    """Poll the server side while the page keeps running; return the last value seen."""
    value = probe()
    for _ in range(int(timeout_s * 10)):
        if value == expected:
            break
        page.wait_for_timeout(100)
        value = probe()
    return value == expected or value


def _stored() -> tuple[int, int, int]:
    """Submissions, versions and the sum of counted lines in the latest versions."""
    db.session.rollback()
    submissions = db.session.scalar(select(func.count()).select_from(Submission))
    versions = db.session.scalar(select(func.count()).select_from(SubmissionVersion))
    counted = db.session.scalar(
        select(func.coalesce(func.sum(TallyLine.count), 0))
        .join(Submission, Submission.current_version_id == TallyLine.version_id)
    )
    return submissions, versions, int(counted)


def test_enroll_tally_send_amend_and_first_load_weight(browser, live, caravan):
    context = _context(browser, live)
    third_party: list[str] = []
    context.on("request", lambda r: third_party.append(r.url)
               if not r.url.startswith((live.url, "data:", "blob:")) else None)
    page = context.new_page()
    live.reset_counter()
    page.goto("/join/ZAG7K2")
    _wait_for_service_worker(page)
    page.wait_for_load_state("networkidle")
    weight, paths = live.sent_bytes, list(live.paths)
    print(f"\nphone form first load: {weight} bytes transferred ({weight / 1024:.1f} KB, "
          f"{len(paths)} requests incl. the service worker's cache fill): {sorted(paths)}")
    assert weight <= BUDGET_BYTES
    assert page.input_value("#join-code") == "ZAG7K2"

    _join(page)
    # 360 px: nothing sticks out sideways, and the grid shows running totals.
    page.click("#setup-form button[type=submit]")
    page.wait_for_selector("#view-grid:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    plus = '#grid button[data-step="1"][data-key="consultations|F|50-64|"]'
    for _ in range(3):
        page.click(plus)
    page.fill('#grid input[data-key="consultations|M|50-64|"]', "12")
    page.click('#grid details[data-measure="procedures"] > summary')
    page.fill('#grid input[data-key="procedures|F|65+|"]', "2")
    # Keyboard: focus the minus button and press Enter.
    page.focus('#grid button[data-step="-1"][data-key="consultations|F|50-64|"]')
    page.keyboard.press("Enter")
    row_total = page.text_content('[data-sum="row|consultations|50-64|"]')
    column_total = page.text_content('[data-sum="col|consultations|F|"]')
    assert (row_total, column_total) == ("14", "2")
    # Optional ICD-10 breakdown: 5 more consultations attributed to chapter VII (the eye).
    page.click("#breakdown > summary")
    page.select_option("#chapter-measure", "consultations")
    page.select_option("#chapter-code", "VII")
    page.click("#chapter-add")
    page.fill('#grid input[data-key="consultations|F|50-64|VII"]', "5")
    assert page.text_content('[data-sum="measure|consultations||"]') == "19"
    page.click("#to-review")
    page.click("#review-send")
    _wait_for_status(page, "sent", 1)
    assert _stored() == (1, 1, 21)
    db.session.rollback()
    assert db.session.scalar(select(TallyLine.count).where(TallyLine.condition == "VII")) == 5

    # Amend: the same tally, corrected, becomes a new version (PUT), not a second tally.
    page.click("#outbox-list li button[data-edit]")
    page.wait_for_selector("#view-grid:not([hidden])")
    page.fill('#grid input[data-key="consultations|M|50-64|"]', "20")
    page.click("#to-review")
    assert page.text_content("#review-send") == "Envoyer la correction"
    page.click("#review-send")
    assert _eventually(page, _stored, (1, 2, 29))
    _wait_for_status(page, "sent", 1)

    # The language is switchable; the choice sets lang and dir on <html> and is remembered.
    page.select_option("#lang", "ar")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    assert page.get_attribute("html", "lang") == "ar"
    assert page.text_content("#nav-outbox [data-i18n]") == "إحصاءاتي"
    page.select_option("#lang", "en")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    page.reload()
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.get_attribute("html", "dir") == "ltr"
    assert page.text_content("#nav-outbox [data-i18n]") == "My tallies"
    assert not third_party, third_party
    _assert_no_page_errors()
    context.close()


def test_offline_in_arabic_three_tallies_arrive_once(browser, live, caravan, pg_app):
    context = _context(browser, live, locale="ar-MA")
    page = context.new_page()
    page.goto("/join/ZAG7K2")
    _wait_for_service_worker(page)
    page.wait_for_function("() => document.querySelector('#join-specialty').options.length > 5")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.get_attribute("html", "lang") == "ar"
    assert page.text_content('label[for="join-name"]') == "اسمك"
    _join(page, "د. أمينة")
    page.click("#setup-form button[type=submit]")
    # The grid is mirrored: the age column sits on the right, the totals on the left.
    age = page.locator("#grid table.tally thead th").first.bounding_box()
    total = page.locator("#grid table.tally thead th").last.bounding_box()
    assert age["x"] > total["x"]
    assert page.text_content("#grid table.tally thead th") == "العمر"
    page.click("#review-back") if page.is_visible("#review-back") else None

    # Browser offline: three tallies stay on the phone, also across a reload.
    context.set_offline(True)
    for n in (5, 7, 9):
        _tally(page, {("consultations", "F", "50-64"): n, ("consultations", "M", "65+"): 1})
    assert _count_status(page, "pending") == 3
    page.reload()
    page.wait_for_selector("#view-setup:not([hidden])")
    page.click("#nav-outbox")
    assert _count_status(page, "pending") == 3
    assert page.text_content("#outbox-list li .status") == "في الانتظار"
    assert _stored() == (0, 0, 0)
    context.set_offline(False)
    _wait_for_status(page, "sent", 3)
    assert _stored() == (3, 3, 5 + 7 + 9 + 3)

    # Server down (the phone still believes it is online): the same, with a reload.
    live.stop()
    _tally(page, {("consultations", "F", "15-24"): 4}, day=DAY_2)
    _tally(page, {("consultations", "M", "0-4"): 6}, day=DAY_2)
    page.reload()
    page.wait_for_selector("#view-setup:not([hidden])")
    page.click("#nav-outbox")
    assert _count_status(page, "pending") == 2
    live.start()
    page.click("#sync-now")
    _wait_for_status(page, "sent", 5)
    assert _stored() == (5, 5, 24 + 10)
    # The coordinator's summary counts that ophthalmology morning once.
    header = auth(make_user("coordinator", regions=["08"]))
    summary = pg_app.test_client().get(
        "/api/v1/summary?by=specialty&measure=consultations&region=08", headers=header)
    assert summary.status_code == 200, summary.json
    assert summary.json["total"] == 34
    assert [(r["specialty"], r["count"]) for r in summary.json["rows"]] == [("OPH", 34)]
    _assert_no_page_errors()
    context.close()


def test_lost_response_is_retried_without_double_counting(browser, live, caravan):
    context = _context(browser, live)
    page = context.new_page()
    page.goto("/join/ZAG7K2")
    _join(page)
    posts: list[int] = []

    def lose_first_answer(route):
        posts.append(1)
        if len(posts) == 1:
            route.fetch()  # the server stores it...
            route.abort("connectionreset")  # ...and the phone never hears back
        else:
            route.continue_()

    page.route("**/api/v1/submissions", lose_first_answer)
    _tally(page, {("consultations", "F", "25-49"): 11})
    for _ in range(100):  # the route handler runs while Playwright waits
        if posts:
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)
    assert _count_status(page, "pending") == 1
    assert _stored() == (1, 1, 11)  # stored, but the phone still says pending
    page.click("#sync-now")
    _wait_for_status(page, "sent", 1)
    assert len(posts) == 2
    assert _stored() == (1, 1, 11)
    page.unroute("**/api/v1/submissions")

    # The server refuses a tally (a day still to come): the phone shows its message.
    _tally(page, {("consultations", "F", "25-49"): 2, ("referrals", "F", "25-49"): 3}, day=LATER,
           warning="Plus d'orientations que de consultations.")
    _wait_for_status(page, "attention", 1)
    detail = page.text_content('#outbox-list li[data-status="attention"] .detail')
    assert LATER.isoformat() in detail

    # A revoked token: the tally waits in the outbox and the phone asks to join again.
    db.session.execute(update(Enrollment).values(revoked_at=func.now()))
    db.session.commit()
    _tally(page, {("consultations", "M", "5-14"): 3})
    page.wait_for_selector("#view-join:not([hidden])")
    assert "Rejoignez" in page.text_content("#message")
    assert _stored() == (1, 1, 11)
    _join(page)
    _wait_for_status(page, "sent", 2)
    assert _stored() == (2, 2, 14)
    _assert_no_page_errors()
    context.close()


def test_my_record_shows_tallies_toggles_consent_and_erases_the_profile(browser, live, caravan):
    from fieldsvc.caravans.models import Volunteer

    context = _context(browser, live)
    page = context.new_page()
    page.goto("/join/ZAG7K2")
    _join(page, name="Dr Amina Bennani")
    _tally(page, {("consultations", "F", "50-64"): 9})
    page.click("#nav-outbox")
    _wait_for_status(page, "sent", 1)
    page.click("#nav-me")
    page.wait_for_selector("#me-record:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#me-caravans li').length === 1")
    assert page.text_content("#me-name") == "Dr Amina Bennani"
    assert "9 consultations" in page.text_content("#me-summary")
    assert "9 consultations" in page.text_content("#me-caravans")
    assert not page.is_checked("#me-consent")
    page.check("#me-consent")
    assert _eventually(page, lambda: (db.session.rollback(), db.session.scalar(
        select(Volunteer.public_consent)))[1], True) is True
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#me-erase")
    page.wait_for_selector("#me-none:not([hidden])")
    assert _eventually(page, lambda: (db.session.rollback(), db.session.scalar(
        select(func.count()).select_from(Volunteer)))[1], 0) is True
    assert _stored()[2] == 9  # the tally stays, unattributed
    page.click("#nav-me")
    page.wait_for_selector("#me-none:not([hidden])")
    _assert_no_page_errors()
    context.close()

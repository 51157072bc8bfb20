"""What doctors hit first in the field, in a real Chromium on PostgreSQL (issue 13).

A reload mid-tally, the coordinator's review on the phone, a join link's language, an insecure
origin, and a 360 px screen in French, Arabic and English.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fieldsvc.tallies.models import Submission
from tests.factories import auth, make_user
from tests.phone import test_browser as phone
from tests.phone.test_browser import (
    DAY_1,
    _assert_no_page_errors,
    _context,
    _join,
    _stored,
    _tally,
    _wait_for_service_worker,
    _wait_for_status,
)

# The phone suite's live server and caravan fixtures, shared by name.
live, caravan = phone.live, phone.caravan

pytestmark = pytest.mark.browser

REASON = "230 orientations pour 200 consultations ? Merci de corriger."

# Every tab, the "offline" pill and every visible button, label or list line keeps its text
# inside its own box, the tabs and the pill do not overlap, and nothing leaves the screen.
OVERFLOWS = """() => {
  const out = [];
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1
    && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
    && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const shown = el => el.getClientRects().length > 0 && !el.closest('.vh, [hidden]');
  const textBox = el => { const r = document.createRange(); r.selectNodeContents(el);
                          return r.getBoundingClientRect(); };
  const name = el => `${el.id || el.className || el.tagName} "${el.textContent.trim().slice(0, 40)}"`;
  const tabs = [...document.querySelectorAll('nav.tabs > *')].filter(shown);
  tabs.forEach((a, i) => tabs.slice(i + 1).forEach(b => {
    if (overlap(a.getBoundingClientRect(), b.getBoundingClientRect()))
      out.push(`${name(a)} overlaps ${name(b)}`);
  }));
  const texts = document.querySelectorAll(
    'header h1, nav.tabs > *, main button, main summary, main label, main h2, main .message, ' +
    '#outbox-list li > *, #draft p');
  for (const el of [...texts].filter(shown)) {
    if (!el.textContent.trim()) continue;
    const box = el.getBoundingClientRect();
    if (!inside(textBox(el), box)) out.push(`${name(el)}: its text overflows its box`);
    if (box.right > innerWidth + 1 || box.left < -1) out.push(`${name(el)} leaves the screen`);
  }
  if (document.documentElement.scrollWidth > innerWidth) out.push('the page scrolls sideways');
  return out;
}"""

# The ISO date of the first tally in "My tallies" reads left to right (year first) on screen.
DATE_READS_LEFT_TO_RIGHT = """(day) => {
  const li = document.querySelector('#outbox-list li span:nth-child(2)');
  const node = li.firstChild, text = node.textContent, at = text.indexOf(day);
  if (at < 0) return 'no ' + day + ' in ' + text;
  const box = (from, to) => { const r = document.createRange(); r.setStart(node, from);
                              r.setEnd(node, to); return r.getBoundingClientRect(); };
  return box(at, at + 4).left < box(at + 8, at + 10).left;
}"""


def _grid_value(page, key: str) -> str:
    return page.input_value(f'#grid input[data-key="{key}"]')


def test_reload_mid_tally_restores_it_and_a_new_tally_never_overwrites_it(browser, live, caravan):
    context = _context(browser, live)
    page = context.new_page()
    page.goto("/join/ZAG7K2")
    _join(page)
    page.select_option("#setup-day", DAY_1.isoformat())
    page.click("#setup-form button[type=submit]")
    page.wait_for_selector("#view-grid:not([hidden])")
    page.fill('#grid input[data-key="consultations|F|25-49|"]', "120")
    page.fill('#grid input[data-key="consultations|M|25-49|"]', "80")
    page.click('#grid details[data-measure="referrals"] > summary')
    page.fill('#grid input[data-key="referrals|F|25-49|"]', "130")

    page.reload()  # or Android dropping the tab
    page.wait_for_selector("#view-grid:not([hidden])")
    assert _grid_value(page, "consultations|F|25-49|") == "120"
    assert _grid_value(page, "consultations|M|25-49|") == "80"
    assert _grid_value(page, "referrals|F|25-49|") == "130"
    assert page.text_content('[data-sum="measure|consultations||"]') == "200"
    assert "là où vous l'aviez laissé" in page.text_content("#message")

    # Back on "What are you counting?" (joining again): the draft is there, and starting
    # another tally asks first instead of replacing it.
    page.click("#nav-tally")
    page.wait_for_selector("#view-grid:not([hidden])")
    page.evaluate("() => document.getElementById('rejoin').click()")
    page.wait_for_selector("#view-join:not([hidden])")
    _join(page)
    assert page.is_visible("#draft")
    assert DAY_1.isoformat() in page.text_content("#draft-text")
    page.click("#setup-form button[type=submit]")
    assert page.is_visible("#view-setup")
    assert "Reprenez ou abandonnez" in page.text_content("#message")
    page.click("#draft-resume")
    page.wait_for_selector("#view-grid:not([hidden])")
    assert _grid_value(page, "referrals|F|25-49|") == "130"
    # Nothing was sent meanwhile; discarding is the doctor's explicit choice.
    assert _stored() == (0, 0, 0)
    page.evaluate("() => document.getElementById('rejoin').click()")
    _join(page)
    page.click("#draft-discard")
    assert not page.is_visible("#draft")
    page.click("#setup-form button[type=submit]")
    page.wait_for_selector("#view-grid:not([hidden])")
    assert _grid_value(page, "consultations|F|25-49|") == ""
    _assert_no_page_errors()
    context.close()


def test_flagged_tally_shows_its_reason_offline_and_is_corrected(browser, live, caravan, pg_app):
    context = _context(browser, live)
    page = context.new_page()
    page.goto("/join/ZAG7K2")
    _wait_for_service_worker(page)
    _join(page)
    _tally(page, {("consultations", "F", "25-49"): 1})
    _wait_for_status(page, "sent", 1)
    # The banner says it went, not that it will go later; one consultation is singular.
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('Envoyé')")
    assert "1 consultation" in page.text_content("#outbox-list li")
    assert "1 consultations" not in page.text_content("#outbox-list li")

    submission_id = page.get_attribute("#outbox-list li", "data-id")
    coordinator = auth(make_user("coordinator", regions=["08"]))
    flagged = pg_app.test_client().post(
        f"/api/v1/submissions/{submission_id}/review", headers=coordinator,
        json={"status": "flagged", "reason": REASON, "version": 1})
    assert flagged.status_code == 200, flagged.json

    page.click("#nav-tally")
    page.click("#nav-outbox")  # "My tallies" asks the server for the reviews
    page.wait_for_selector('#outbox-list li[data-review="flagged"]')
    item = page.locator("#outbox-list li").first
    assert item.locator(".status").text_content() == "À corriger"
    assert REASON in item.text_content()
    assert item.locator("button[data-edit]").text_content() == "Corriger"

    # Offline, even after a reload, the phone still shows the last review it heard.
    context.set_offline(True)
    page.reload()
    page.click("#nav-outbox")
    page.wait_for_selector('#outbox-list li[data-review="flagged"]')
    assert REASON in page.text_content("#outbox-list li")
    context.set_offline(False)

    page.click('#outbox-list li button[data-edit]')
    page.wait_for_selector("#view-grid:not([hidden])")
    page.fill('#grid input[data-key="consultations|F|25-49|"]', "3")
    page.click("#to-review")
    page.click("#review-send")
    page.wait_for_selector("#outbox-list li:not([data-review='flagged'])")
    _wait_for_status(page, "sent", 1)
    assert page.text_content("#outbox-list li .status") == "Envoyé"
    assert "3 consultations" in page.text_content("#outbox-list li")
    assert _stored() == (1, 2, 3)
    from fieldsvc.extensions import db

    assert db.session.scalar(select(Submission.review_status)) == "received"
    _assert_no_page_errors()
    context.close()


def test_arabic_link_on_a_french_phone_and_nothing_overflows_at_360(browser, live, caravan):
    context = _context(browser, live, locale="fr-FR")
    page = context.new_page()
    page.goto("/join/ZAG7K2?lang=ar")
    page.wait_for_function("() => document.querySelector('#join-specialty').options.length > 5")
    assert (page.get_attribute("html", "lang"), page.get_attribute("html", "dir")) == ("ar", "rtl")
    assert page.text_content('label[for="join-name"]') == "اسمك"
    page.reload()  # the link's language became the doctor's choice
    page.wait_for_function("() => document.querySelector('#join-specialty').options.length > 5")
    assert page.get_attribute("html", "lang") == "ar"
    _join(page, "د. أمينة")
    _tally(page, {("consultations", "F", "50-64"): 2})
    _wait_for_status(page, "sent", 1)

    for lang in ("ar", "fr", "en"):
        page.select_option("#lang", lang)
        page.wait_for_function("(l) => document.documentElement.lang === l", arg=lang)
        context.set_offline(True)  # the longest pill: "Offline: tallies are kept on this phone"
        page.wait_for_function("() => document.querySelector('#net').classList.contains('off')")
        page.click("#nav-outbox")
        assert page.evaluate(OVERFLOWS) == [], (lang, "outbox")
        assert page.evaluate(DATE_READS_LEFT_TO_RIGHT, DAY_1.isoformat()) is True, lang
        outbox_text = page.text_content("#outbox-list li")
        page.click("#nav-tally")  # the setup the first time, then the (empty) tally in progress
        page.wait_for_selector("#view-setup:not([hidden]), #view-grid:not([hidden])")
        if page.is_visible("#view-setup"):
            assert page.evaluate(OVERFLOWS) == [], (lang, "setup")
            # A day reads the same on every screen: its isolated ISO date, then its weekday.
            day = page.text_content(f'#setup-day option[value="{DAY_1.isoformat()}"]')
            assert day.startswith(f"\u2066{DAY_1.isoformat()}\u2069 ("), day
            assert day in outbox_text
            page.click("#setup-form button[type=submit]")
            page.wait_for_selector("#view-grid:not([hidden])")
        page.click("#breakdown > summary")
        page.select_option("#chapter-code", "I")
        page.click("#chapter-add")
        assert page.evaluate(OVERFLOWS) == [], (lang, "grid")
        # Steppers are at least 44 x 44; an ICD chapter stays an isolated Latin "I".
        for box in (page.locator("#grid button.step").nth(i).bounding_box() for i in (0, 1)):
            assert box["width"] >= 44 and box["height"] >= 44, box
        caption = page.locator('#grid table[data-chapter="I"] caption').text_content()
        assert "\u2066I\u2069" in caption
        assert "\u2066I\u2069" in page.locator('#chapter-code option[value="I"]').text_content()
        page.click('#grid button[data-remove-chapter="consultations|I"]')
        context.set_offline(False)
    page.reload()  # the doctor's own choice now wins over the phone's French
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    _assert_no_page_errors()
    context.close()


def test_insecure_origin_says_the_form_cannot_work_offline(browser, live, caravan):
    # A LAN address over plain http: the page's origin is not secure, as on a phone in the field.
    context = _context(browser, live)

    def through_the_lan(route):
        response = route.fetch(url=route.request.url.replace("http://fieldsvc.lan", live.url))
        route.fulfill(response=response)

    context.route("http://fieldsvc.lan/**", through_the_lan)
    page = context.new_page()
    page.goto("http://fieldsvc.lan/join/ZAG7K2")
    page.wait_for_function("() => document.querySelector('#join-specialty').options.length > 5")
    assert page.evaluate("window.isSecureContext") is False
    assert page.is_visible("#no-offline")
    assert "HTTPS" in page.text_content("#no-offline")
    # The form still works online there.
    _join(page)
    _tally(page, {("consultations", "M", "5-14"): 4})
    _wait_for_status(page, "sent", 1)
    # On a secure origin (here 127.0.0.1) it says nothing of the kind.
    secure = context.new_page()
    secure.goto(f"{live.url}/join/ZAG7K2")
    secure.wait_for_function("() => document.querySelector('#join-specialty').options.length > 5")
    assert not secure.is_visible("#no-offline")
    _assert_no_page_errors()
    context.close()

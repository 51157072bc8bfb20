"""A doctor pledges through a caravan's link, and a certificate prints in French and Arabic,
in a real Chromium on PostgreSQL (run once, `-m browser`)."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from fieldsvc.caravans.models import Volunteer
from fieldsvc.extensions import db
from fieldsvc.volunteers.models import Pledge
from fieldsvc.volunteers.services import certificate_code
from tests.factories import make_areas, make_caravan, make_enrollment, make_user

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


def _page(browser, live: str, width: int, locale: str = "fr-FR"):
    context = browser.new_context(base_url=live, viewport={"width": width, "height": 800},
                                  locale=locale)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.problems = problems
    return context, page


def test_a_doctor_pledges_from_the_link_in_arabic(browser, live, pg_app):
    make_areas()
    caravan = make_caravan(status="planned", join_code="PLDG2345",
                           first_day=dt.date.today() + dt.timedelta(days=10),
                           specialties=("GEN", "OPH"))
    db.session.commit()
    context, page = _page(browser, live, 360, "ar-MA")
    page.goto("/pledge/PLDG-2345?lang=ar")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.locator("tr.gap").count() == 2
    page.fill("#display_name", "د. أمينة")
    page.check("input[name=specialty][value=OPH]")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector(".pledge-key")
    assert page.locator("tr.gap").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert not page.problems, page.problems
    db.session.rollback()
    pledge = db.session.query(Pledge).one()
    assert (pledge.caravan_id, pledge.display_name, pledge.specialty_code) == (
        caravan.id, "د. أمينة", "OPH")
    context.close()


def test_a_coordinator_prints_a_bilingual_certificate_that_verifies(browser, live, pg_app):
    make_areas()
    caravan = make_caravan("07.351.02.07", title="Caravane de Ouahat Sidi Brahim",
                           sites=(("École", 31.70, -7.95),), status="closed",
                           organizers=("Wahat Al-Khair",))
    volunteer = Volunteer(display_name="Dr Amina Bennani", specialty_code="OPH",
                          public_consent=True, profile_key_hash="e" * 64)
    db.session.add(volunteer)
    db.session.flush()
    enrollment, _ = make_enrollment(caravan)
    enrollment.volunteer_id = volunteer.id
    make_user("coordinator", regions=["07"], username="coord", password="palmiers-de-skoura")
    db.session.commit()
    code = certificate_code(volunteer.id, "caravan", caravan.id)

    context, page = _page(browser, live, 1280)
    page.goto("/login?lang=fr")
    page.fill("#username", "coord")
    page.fill("#password", "palmiers-de-skoura")
    page.click("form.stack button[type=submit]")
    page.goto(f"/volunteers/{volunteer.id}/certificates")
    page.click(f"a[href='/certificates/{code}']")
    french = page.locator("section.certificate-side[lang=fr]")
    arabic = page.locator("section.certificate-side[lang=ar]")
    assert "Certificat de reconnaissance" in french.inner_text()
    assert "شهادة تقدير" in arabic.inner_text() and "Wahat Al-Khair" in arabic.inner_text()
    assert arabic.evaluate("el => getComputedStyle(el).direction") == "rtl"
    assert french.evaluate("el => getComputedStyle(el).direction") == "ltr"
    # Side by side: the same top, French first from the left; the stylesheet applied.
    left, right = french.bounding_box(), arabic.bounding_box()
    assert abs(left["y"] - right["y"]) < 2 and left["x"] + left["width"] <= right["x"]
    pdf = page.request.get(f"/certificates/{code}.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    assert not page.problems, page.problems
    context.close()

    context, page = _page(browser, live, 360)
    page.goto("/verify?lang=fr")
    page.fill("#code", code)
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#valid-title")
    assert "Dr Amina Bennani" in page.inner_text("main")
    forged = re.sub(r"-(\w)(\w+)$", lambda m: "-" + ("B" if m[1] == "A" else "A") + m[2], code)
    response = page.goto(f"/verify/{forged}")
    assert response.status == 404 and "Dr Amina Bennani" not in page.inner_text("main")
    assert not page.problems or all("404" in p for p in page.problems), page.problems
    context.close()

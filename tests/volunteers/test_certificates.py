"""Certificates of recognition: bilingual, printable, PDF, and verifiable by a code that cannot be forged."""

from __future__ import annotations

import datetime as dt
import re
import sys

from fieldsvc.accounts.services import get_or_create_organization
from fieldsvc.caravans.models import Volunteer
from fieldsvc.extensions import db as _db
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user


def _volunteer(db, consent: bool = True):
    make_areas()
    get_or_create_organization("Conseil communal de Ouahat Sidi Brahim", kind="commune_council",
                               name_ar="المجلس الجماعي لواحة سيدي ابراهيم")
    caravan = make_caravan("07.351.02.07", title="Caravane de Ouahat Sidi Brahim",
                           organizers=("Wahat Al-Khair", "Conseil communal de Ouahat Sidi Brahim"),
                           sites=(("École", 31.70, -7.95),), first_day=dt.date(2026, 3, 14),
                           last_day=dt.date(2026, 3, 15), status="closed")
    volunteer = Volunteer(display_name="Dr Amina Bennani", specialty_code="OPH",
                          public_consent=consent, profile_key_hash="c" * 64)
    _db.session.add(volunteer)
    _db.session.flush()
    enrollment, _ = make_enrollment(caravan, display_name=volunteer.display_name)
    enrollment.volunteer_id = volunteer.id
    coordinator = make_user("coordinator", regions=["07"])
    db.session.commit()
    return caravan, volunteer, auth(coordinator)


def _codes(client, volunteer, headers):
    page = client.get(f"/volunteers/{volunteer.id}/certificates", headers=headers)
    assert page.status_code == 200
    return re.findall(r'<code dir="ltr">([^<]+)</code>', page.get_data(as_text=True))


def test_certificate_names_organizers_in_french_and_arabic_side_by_side(app, client, db):
    caravan, volunteer, headers = _volunteer(db)
    codes = _codes(client, volunteer, headers)
    assert codes == [f"{volunteer.id}-C{caravan.id}-" + codes[0].split("-")[-1],
                     f"{volunteer.id}-Y2026-" + codes[1].split("-")[-1]]
    html = client.get(f"/certificates/{codes[0]}", headers=headers).get_data(as_text=True)
    assert '<section class="certificate-side" lang="fr" dir="ltr">' in html
    assert '<section class="certificate-side" lang="ar" dir="rtl">' in html
    french, arabic = html.split('lang="ar" dir="rtl"')
    assert "Certificat de reconnaissance" in french and "Wahat Al-Khair" in french
    assert "Conseil communal de Ouahat Sidi Brahim" in french and "Ouahat Sidi Brahim" in french
    assert "المجلس الجماعي لواحة سيدي ابراهيم" in arabic and "واحة سيدي ابراهيم" in arabic
    assert codes[0] in french and codes[0] in arabic
    yearly = client.get(f"/certificates/{codes[1]}", headers=headers).get_data(as_text=True)
    assert "2026" in yearly and "Wahat Al-Khair" in yearly
    # Only those who run caravans print certificates.
    assert client.get(f"/certificates/{codes[0]}").status_code == 401


def test_certificate_prints_to_pdf_or_answers_503(app, client, db, monkeypatch):
    _, volunteer, headers = _volunteer(db)
    code = _codes(client, volunteer, headers)[0]
    pdf = client.get(f"/certificates/{code}.pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as on a server without it
    missing = client.get(f"/certificates/{code}.pdf", headers=headers)
    assert missing.status_code == 503
    assert missing.content_type == "application/problem+json"
    # In the caller's language (French by default), title included.
    assert "imprimez-la depuis le navigateur" in missing.json["detail"]
    assert missing.json["title"] == "Service indisponible"


def test_verification_confirms_a_genuine_code_and_rejects_a_forged_one(app, client, db):
    caravan, volunteer, headers = _volunteer(db)
    code = _codes(client, volunteer, headers)[0]
    genuine = client.get(f"/verify/{code}?lang=fr")
    assert genuine.status_code == 200
    text = genuine.get_data(as_text=True)
    assert "Dr Amina Bennani" in text and "Caravane de Ouahat Sidi Brahim" in text
    mac = code.split("-")[-1]
    forged_mac = ("A" if mac[0] != "A" else "B") + mac[1:]
    for forged in (f"{volunteer.id}-C{caravan.id}-{forged_mac}",  # one letter changed
                   f"{volunteer.id + 1}-C{caravan.id}-{mac}",  # another volunteer's id
                   f"{volunteer.id}-Y2025-{mac}", "not-a-code", f"{volunteer.id}-Y99999-{mac}"):
        refused = client.get(f"/verify/{forged}")
        assert refused.status_code == 404, forged
        assert "Dr Amina Bennani" not in refused.get_data(as_text=True)
    assert client.get(f"/verify?code={code}").status_code == 302


def test_verification_does_not_name_a_volunteer_without_consent(app, client, db):
    _, volunteer, headers = _volunteer(db, consent=False)
    code = _codes(client, volunteer, headers)[0]
    page = client.get(f"/verify/{code}")
    assert page.status_code == 200
    assert "Dr Amina Bennani" not in page.get_data(as_text=True)

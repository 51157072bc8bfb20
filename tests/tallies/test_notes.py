"""Notes are for the coordinator: identifiers of a patient are refused with a 422 that says why,
on the phone's fast path and on amendments alike; a coordinator erases a note from every version."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.extensions import db
from fieldsvc.tallies.models import Submission, SubmissionVersion
from tests.factories import auth, make_user
from tests.tallies.helpers import field_setup, lines, payload

REFUSED = {
    "Patient Ahmed Benali, revu demain": "name",
    "la patiente Fatima souffre beaucoup": "name",
    "المريض: محمد العلوي": "name",
    "مريضة اسمها خديجة": "name",
    "Rappeler au 06 61 23 45 67": "phone",
    "tel +212661234567 pour le résultat": "phone",
    "CIN BE123456 oubliée à l'accueil": "identity card",
    "carte nationale laissée sur la table": "identity card",
    "né le 12/03/1958, diabétique": "birth",
    "ddn 1961": "birth",
    "enfant né en 2019, 03/04/1987": "birth",
    "تاريخ الازدياد 1970": "birth",
}
ACCEPTED = [
    "Électricité coupée l'après-midi",
    "2 cataractes opérées le soir ; patients très âgés",
    "Beaucoup de malades venus de M'Hamid, route RN9 coupée",
    "انقطاع الكهرباء بعد الظهر، المرضى كثيرون",
    "Caravane du 28/11/2026, 14h-18h, salle B",
]


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Submission))


@pytest.mark.parametrize("note, why", list(REFUSED.items()))
def test_notes_that_identify_a_patient_are_refused_with_the_reason(client, note, why):
    caravan, _, header = field_setup()
    response = client.post("/api/v1/submissions", json=payload(caravan, note=note),
                           headers=header)
    assert response.status_code == 422, (note, response.json)
    assert response.content_type == "application/problem+json"
    assert why in response.json["errors"]["note"][0], response.json
    assert _count() == 0


def test_ordinary_notes_are_kept_and_amendments_are_checked_too(client):
    caravan, _, header = field_setup()
    for note in ACCEPTED:
        response = client.post("/api/v1/submissions", json=payload(caravan, note=note),
                               headers=header)
        assert response.status_code == 201, (note, response.json)
        assert response.json["note"] == note
    body = payload(caravan, note=ACCEPTED[0])
    assert client.post("/api/v1/submissions", json=body, headers=header).status_code == 201
    amended = {key: value for key, value in body.items() if key != "id"}
    refused = client.put(f"/api/v1/submissions/{body['id']}", headers=header,
                         json=dict(amended, note="Patient Youssef Amrani", lines=lines(20)))
    assert refused.status_code == 422 and "note" in refused.json["errors"]
    stored = client.get(f"/api/v1/submissions/{body['id']}", headers=header).json
    assert stored["version_count"] == 1 and stored["note"] == ACCEPTED[0]


def test_a_coordinator_erases_a_note_from_every_version(client):
    caravan, _, header = field_setup()
    body = payload(caravan, note="Électricité coupée, famille Alaoui venue à 5")
    assert client.post("/api/v1/submissions", json=body, headers=header).status_code == 201
    amended = {key: value for key, value in body.items() if key != "id"}
    amended.update(lines=lines(30), note="Électricité revenue ; famille Alaoui repartie")
    assert client.put(f"/api/v1/submissions/{body['id']}", json=amended,
                      headers=header).status_code == 200
    url = f"/api/v1/submissions/{body['id']}/note"
    assert client.delete(url, headers=header).status_code == 403  # not the volunteer
    outsider = auth(make_user("coordinator", regions=["07"]))
    assert client.delete(url, headers=outsider).status_code == 403
    coordinator = auth(make_user("coordinator", regions=["08"]))

    response = client.delete(url, headers=coordinator)

    assert response.status_code == 200, response.json
    assert response.json["note"] is None and response.json["version"] == 2
    detail = client.get(f"/api/v1/submissions/{body['id']}", headers=coordinator).json
    assert [version["note"] for version in detail["versions"]] == [None, None]
    assert db.session.scalar(select(func.count()).select_from(SubmissionVersion)
                             .where(SubmissionVersion.note.is_not(None))) == 0
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "submission.note_erase"))
    assert event.region_code == "08" and event.detail["versions"] == 2
    assert "Alaoui" not in str(event.detail)
    assert client.delete("/api/v1/submissions/0b6f2c9e-3f1c-4b8e-9a51-6f0d2f4a7c11/note",
                         headers=coordinator).status_code == 404

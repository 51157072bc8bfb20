"""Shared fields: blank and invisible text, the nil UUID and dates outside 2000–2100 are refused
with a 422 that names the field, on every route that takes them."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

BLANKS = ["   ", "\u200b\u200b\u200b", "\u202e\u202d\u200f\u2066", "\u3164\u3164\u3164",
          " \u00a0\u2003\ufeff", "\u0301\u0301\u0301"]
CARAVAN = {"title": "Caravane de Zagora", "commune": "08.587.01.13", "first_day": "2026-11-27",
           "last_day": "2026-11-28", "specialties": ["OPH"]}


def _refused(response, field: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    assert any(key.startswith(field) for key in response.json["errors"]), response.json


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_and_invisible_text_is_refused(client, db, blank):
    make_areas()
    admin = auth(make_user("admin"))
    coordinator = auth(make_user("coordinator", regions=["08"]))
    caravan = make_caravan(join_code="BLANK234")
    _, volunteer = make_enrollment(caravan)
    db.session.commit()

    _refused(client.post("/api/v1/caravans", json={**CARAVAN, "title": blank},
                         headers=coordinator), "title")
    _refused(client.patch(f"/api/v1/caravans/{caravan.id}", json={"title": blank},
                          headers=coordinator), "title")
    _refused(client.post("/api/v1/caravans", headers=coordinator, json={
        **CARAVAN, "sites": [{"name": blank, "location": "30.33, -5.84"}]}), "sites")
    _refused(client.post("/api/v1/enrollments", json={"join_code": "BLANK234",
                                                      "display_name": blank}), "display_name")
    _refused(client.post("/api/v1/organizations", json={"name": blank}, headers=admin), "name")
    _refused(client.post("/api/v1/organizations", json={"name": "Association Tiwizi",
                                                        "name_ar": blank}, headers=admin),
             "name_ar")
    _refused(client.post("/api/v1/volunteers/me", json={"display_name": blank},
                         headers=volunteer), "display_name")
    _refused(client.post("/api/v1/specialties", headers=admin, json={
        "code": "NEP", "label_fr": "Néphrologie", "label_ar": blank, "label_en": "Nephrology"}),
        "label_ar")


def test_visible_text_is_kept_without_its_invisible_edges(client, db):
    make_areas()
    coordinator = auth(make_user("coordinator", regions=["08"]))
    title = "\u200b  Caravane d'Agdz \u200f\u00a0"
    created = client.post("/api/v1/caravans", json={**CARAVAN, "title": title},
                          headers=coordinator)
    assert created.status_code == 201, created.json
    assert created.json["title"] == "Caravane d'Agdz"
    # Arabic with a right-to-left mark inside is ordinary text.
    arabic = client.post("/api/v1/caravans", headers=coordinator,
                         json={**CARAVAN, "title": "قافلة\u200f زاكورة"})
    assert arabic.status_code == 201 and arabic.json["title"] == "قافلة\u200f زاكورة"


def _tally(caravan, **changes):
    return {"id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": "2026-11-27",
            "specialty": "OPH", "lines": [{"measure": "consultations", "sex": "F",
                                           "age_band": "50-64", "count": 4}], **changes}


def test_the_nil_uuid_is_not_a_submission_id(client, db):
    make_areas()
    caravan = make_caravan()
    _, volunteer = make_enrollment(caravan)
    db.session.commit()
    for nil in ("00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000"):
        _refused(client.post("/api/v1/submissions", json=_tally(caravan, id=nil),
                             headers=volunteer), "id")
    assert client.post("/api/v1/submissions", json=_tally(caravan),
                       headers=volunteer).status_code == 201


@pytest.mark.parametrize("day", ["9999-12-31", "9999-12-30", "0001-01-01", "1999-12-31",
                                 "2101-01-01"])
def test_days_outside_2000_to_2100_are_refused(client, db, day):
    make_areas()
    coordinator = auth(make_user("coordinator", regions=["08"]))
    admin = auth(make_user("admin"))
    caravan = make_caravan()
    _, volunteer = make_enrollment(caravan)
    db.session.commit()

    _refused(client.post("/api/v1/caravans", json={**CARAVAN, "first_day": day, "last_day": day},
                         headers=coordinator), "first_day")
    _refused(client.patch(f"/api/v1/caravans/{caravan.id}", json={"last_day": day},
                          headers=coordinator), "last_day")
    _refused(client.post("/api/v1/submissions", json=_tally(caravan, day=day),
                         headers=volunteer), "day")
    _refused(client.get(f"/api/v1/submissions?day={day}", headers=coordinator), "day")
    _refused(client.get(f"/api/v1/audit?from={day}T00:00:00Z", headers=admin), "from")


def test_the_edges_of_the_range_are_accepted(client, db):
    make_areas()
    coordinator = auth(make_user("coordinator", regions=["08"]))
    for first, last in (("2000-01-01", "2000-01-02"), ("2100-12-30", "2100-12-31")):
        response = client.post("/api/v1/caravans", headers=coordinator,
                               json={**CARAVAN, "first_day": first, "last_day": last})
        assert response.status_code == 201, response.json
        assert response.json["last_day"] == last

"""The shared factories build a caravan a volunteer's token can reach."""

from tests.factories import make_areas, make_caravan, make_enrollment


def test_volunteer_token_is_recognised(app, client, db):
    make_areas()
    caravan = make_caravan()
    _, headers = make_enrollment(caravan)
    db.session.commit()
    assert caravan.specialties == ["GEN", "OPH", "PED"]
    assert client.get("/api/v1/catalog", headers=headers).status_code == 200
    assert client.get("/api/v1/catalog", headers={"Authorization": "Bearer nope"}).status_code == 401

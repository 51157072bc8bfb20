"""On the demo season, as a new user would try it: contributions, a partnership, a clash."""

from __future__ import annotations

import datetime as dt

from geopy.distance import geodesic
from sqlalchemy import select

from fieldsvc.caravans.models import Caravan
from fieldsvc.demo import load_demo
from tests.factories import auth, make_areas, make_user

ASSOCIATIONS = {"Wahat Al-Khair", "Association Al-Muqim des médecins résidents",
                "Union des femmes marocaines", "Zuhur Al-Waha pour le développement social"}
COUNCIL = "Conseil communal de Ouahat Sidi Brahim"


def test_demo_lists_associations_and_the_councils_partnership_and_warns_of_a_clash(
        app, client, db):
    make_areas()
    load_demo(echo=lambda message: None)
    db.session.commit()

    organizations = client.get("/api/v1/contributions?by=organization").json["rows"]
    assert ASSOCIATIONS | {COUNCIL} <= {row["name"] for row in organizations}
    partnerships = client.get("/api/v1/contributions?by=partnership").json["rows"]
    council = [row for row in partnerships if COUNCIL in row["name"]]
    assert council and council[0]["caravans"] >= 1 and "07.351.02.07" in council[0]["communes"]
    history = council[0]["history"]
    assert len(history) == council[0]["caravans"]
    assert sum(held["days"] for held in history) == council[0]["days"]
    assert {held["commune"] for held in history} <= set(council[0]["communes"])
    assert {code for held in history for code in held["specialties"]} == set(
        council[0]["specialties"])
    page = client.get("/contributions?by=partnership&lang=fr").get_data(as_text=True)
    assert COUNCIL in page and history[0]["title"] in page

    # A second caravan planned 10 km from a demo caravan, in the same week, is warned about.
    existing = db.session.scalars(
        select(Caravan).where(Caravan.commune_code == "07.351.02.07")).first()
    point = geodesic(kilometers=10).destination((31.70, -7.95), 90)
    coordinator = make_user("coordinator", regions=["07"])
    db.session.commit()
    first = existing.first_day + dt.timedelta(days=2)
    created = client.post("/api/v1/caravans", headers=auth(coordinator), json={
        "title": "Deuxième caravane", "commune": "07.351.02.07",
        "sites": [{"name": "Douar", "location": f"{point.latitude:.5f}, {point.longitude:.5f}"}],
        "first_day": first.isoformat(), "last_day": first.isoformat(), "specialties": ["GEN"]})
    assert created.status_code == 201, created.json
    assert existing.id in [clash["caravan"]["id"] for clash in created.json["clashes"]]
    assert created.json["warnings"]

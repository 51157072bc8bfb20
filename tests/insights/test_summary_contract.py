"""A page or an export calling the summary service gets exactly what the API answers."""

from __future__ import annotations

import datetime as dt

from fieldsvc.insights import services
from fieldsvc.insights.queries import SummaryQuery, SummaryResult
from fieldsvc.insights.schemas import SummaryArgs, SummaryResultSchema
from fieldsvc.security import Principal
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user, publish


def _season(db):
    make_areas()
    caravan = make_caravan("08.587.01.13", organizers=("Wahat Al-Khair",), sites=())
    db.session.commit()
    for specialty, count in (("OPH", 40), ("PED", 3), ("GEN", 25)):
        make_tally(caravan, day=dt.date(2026, 10, 3), specialty=specialty,
                   lines=[("consultations", "F", "15-24", None, count)])
    db.session.commit()
    publish(dt.date(2026, 11, 29))


def test_service_and_api_give_the_same_summary(client, db):
    _season(db)
    admin = make_user("admin")
    planner = make_user("planner")
    db.session.commit()
    url = "/api/v1/summary?by=region,specialty&region=08&from=2026-10-01&to=2026-12-31"
    for user, principal in ((admin, Principal(role="admin")), (planner, Principal(role="planner"))):
        answer = client.get(url, headers=auth(user))
        assert answer.status_code == 200, answer.json
        query = SummaryArgs().load({"by": "region,specialty", "region": "08",
                                    "from": "2026-10-01", "to": "2026-12-31"})
        result = services.summary(query, principal)
        assert isinstance(result, SummaryResult)
        assert SummaryResultSchema().dump(result) == answer.json
    assert answer.json["full_detail"] is False and answer.json["release"]["table"]
    assert {row["specialty"]: row["count"] for row in answer.json["rows"]}["PED"] is None


def test_query_parameters_load_into_a_summary_query(app):
    with app.app_context():
        query = SummaryArgs().load({"by": "province, specialty,", "caravan": "3,4",
                                    "sex": "F", "from": "2026-01-01"})
    assert query == SummaryQuery(by=["province", "specialty"], caravans=[3, 4], sexes=["F"],
                                 start=dt.date(2026, 1, 1))


def test_bad_summary_parameters_say_what_to_fix(client, db):
    admin = make_user("admin")
    db.session.commit()
    for query, field in (("by=province,colour", "by"), ("by=region,region", "by"),
                         ("caravan=99999999999999999999", "caravan"), ("caravan=x", "caravan"),
                         ("sex=X", "sex"), ("from=2026-02-01&to=2026-01-01", "from"),
                         ("specialty=XYZ", "specialty"), ("measure=smiles", "measure")):
        response = client.get(f"/api/v1/summary?{query}", headers=auth(admin))
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"
        assert any(key.startswith(field) for key in response.json["errors"]), response.json

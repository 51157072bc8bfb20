"""The summary equals a plain-Python sum over the same lines, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from fieldsvc.insights.queries import SummaryQuery, summary_rows
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine
from tests.factories import auth, make_areas, make_caravan, make_tally, make_user

DIMS = ["region", "province", "commune", "site", "caravan", "organization", "specialty",
        "measure", "sex", "age_band", "condition", "day", "week", "month", "quarter", "year"]
MEASURES = ["consultations", "referrals", "turned_away", "glasses"]
SPECIALTIES = ["OPH", "GEN", "PED"]


def _period(unit: str, day: dt.date) -> str:
    if unit == "day":
        return day.isoformat()
    if unit == "week":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    if unit == "month":
        return f"{day.year}-{day.month:02d}"
    if unit == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def _world(db):
    make_areas()
    zagora = make_caravan("08.587.01.13", organizers=("Wahat Al-Khair", "Zuhur"),
                          sites=(("École Al Amal", 30.33, -5.84),
                                 ("Douar Tamegroute", 30.26, -5.68)))
    mhamid = make_caravan("08.587.09.23", organizers=("Zuhur",), sites=())
    ouahat = make_caravan("07.351.02.07", organizers=("Union",),
                          sites=(("Dispensaire", 31.70, -7.95),))
    db.session.commit()
    # One Zagora site lies in M'Hamid: lines there count under the site's commune.
    zagora.sites[1].commune_code = "08.587.09.23"
    db.session.commit()
    return [zagora, mhamid, ouahat]


line_strategy = st.tuples(
    st.sampled_from(MEASURES), st.sampled_from(["F", "M"]),
    st.sampled_from(["0-4", "15-24", "50-64", "65+"]), st.sampled_from([None, "VII", "I"]),
    st.integers(0, 30),
)
submission_strategy = st.fixed_dictionaries({
    "caravan": st.integers(0, 2),
    "site": st.integers(0, 2),
    "day": st.dates(dt.date(2025, 12, 25), dt.date(2026, 4, 5)),
    "specialty": st.sampled_from(SPECIALTIES),
    "status": st.sampled_from(["received", "approved", "flagged", "rejected"]),
    "lines": st.lists(line_strategy, min_size=1, max_size=4, unique_by=lambda t: t[:4]),
    "amended": st.booleans(),
})
query_strategy = st.fixed_dictionaries({
    "by": st.lists(st.sampled_from(DIMS), max_size=4, unique=True),
    "measure": st.sampled_from([None, "consultations", "turned_away"]),
    "region": st.sampled_from([None, "08"]),
    "specialty": st.sampled_from([None, "OPH"]),
    "sex": st.sampled_from([None, "F"]),
    "from": st.sampled_from([None, dt.date(2026, 1, 1)]),
    "to": st.sampled_from([None, dt.date(2026, 2, 28)]),
    "organization": st.booleans(),
    "status": st.sampled_from([None, "approved"]),
})


def _expected(caravans, stored, query: SummaryQuery) -> dict[tuple, int]:
    sums: dict[tuple, int] = defaultdict(int)
    measures = query.effective_measures()
    for item in stored:
        caravan = caravans[item["caravan"]]
        site = item["site_obj"]
        commune = site.commune_code if site is not None else caravan.commune_code
        if item["status"] == "rejected":
            continue
        if query.regions and commune[:2] not in query.regions:
            continue
        if query.specialties and item["specialty"] not in query.specialties:
            continue
        if query.statuses and item["status"] not in query.statuses:
            continue
        if query.start and item["day"] < query.start or query.end and item["day"] > query.end:
            continue
        organizations = [o.id for o in caravan.organizers]
        if query.organizations and not set(organizations) & set(query.organizations):
            continue
        if "organization" in query.by and query.organizations:
            organizations = [o for o in organizations if o in query.organizations]
        for measure, sex, band, condition, count in item["lines"]:
            if measures and measure not in measures:
                continue
            if query.sexes and sex not in query.sexes:
                continue
            for organization in organizations if "organization" in query.by else [None]:
                values = {
                    "region": commune[:2], "province": commune[:6], "commune": commune,
                    "site": site.id if site is not None else None, "caravan": caravan.id,
                    "organization": organization, "specialty": item["specialty"],
                    "measure": measure, "sex": sex, "age_band": band, "condition": condition,
                }
                for unit in ("day", "week", "month", "quarter", "year"):
                    values[unit] = _period(unit, item["day"])
                sums[tuple(values[d] for d in query.by)] += count
    if not query.by:
        return {(): sums.get((), 0)}  # no grouping: one row, the total, even when it is 0
    return dict(sums)


@settings(max_examples=20, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(submissions=st.lists(submission_strategy, min_size=1, max_size=8),
       queries=st.lists(query_strategy, min_size=1, max_size=3))
def test_summary_equals_plain_python(app, db, submissions, queries):
    caravans = getattr(app, "_insights_world", None)
    if caravans is None or db.session.get(type(caravans[0]), caravans[0].id) is None:
        caravans = _world(db)
        app._insights_world = caravans
    stored = []
    try:
        for item in submissions:
            caravan = caravans[item["caravan"]]
            sites = caravan.sites
            site = sites[item["site"] % len(sites)] if sites and item["site"] else None
            if item["amended"]:
                # An older version that must not count once amended away.
                old = make_tally(caravan, day=item["day"], specialty=item["specialty"],
                                 lines=[("consultations", "F", "0-4", None, 1000)])
                new = SubmissionVersion(
                    submission_id=old.id, number=2, caravan_id=caravan.id,
                    site_id=site.id if site else None, day=item["day"],
                    specialty_code=item["specialty"], content_hash="x" * 64,
                )
                db.session.add(new)
                db.session.flush()
                for measure, sex, band, condition, count in item["lines"]:
                    db.session.add(TallyLine(version_id=new.id, measure_code=measure, sex=sex,
                                             age_band=band, condition=condition, count=count))
                old.current_version_id = new.id
                old.review_status = item["status"]
            else:
                make_tally(caravan, day=item["day"], specialty=item["specialty"],
                           lines=item["lines"], status=item["status"],
                           site_id=site.id if site else None)
            stored.append({**item, "site_obj": site})
        db.session.commit()
        plain = {"measure": None, "region": None, "specialty": None, "sex": None, "from": None,
                 "to": None, "organization": False, "status": None}
        # The random group-bys, plus every period and the multi-valued keys on their own.
        every_dimension = [{**plain, "by": [d]} for d in ("day", "week", "month", "quarter",
                                                          "year", "organization", "condition")]
        for raw in [*queries, *every_dimension]:
            organization_ids = [caravans[0].organizers[0].id] if raw["organization"] else []
            query = SummaryQuery(
                by=raw["by"], measures=[raw["measure"]] if raw["measure"] else [],
                regions=[raw["region"]] if raw["region"] else [],
                specialties=[raw["specialty"]] if raw["specialty"] else [],
                sexes=[raw["sex"]] if raw["sex"] else [],
                statuses=[raw["status"]] if raw["status"] else [],
                organizations=organization_ids, start=raw["from"], end=raw["to"],
            )
            rows = summary_rows(query)
            got = {tuple(row[d] for d in query.by): row["count"] for row in rows}
            expected = _expected(caravans, stored, query)
            assert got == expected, (query, rows)
            for row in rows:
                for level in ("region", "province", "commune"):
                    if level in query.by:
                        assert row[f"{level}_name_fr"]
    finally:
        db.session.rollback()
        db.session.execute(delete(TallyLine))
        db.session.execute(delete(SubmissionVersion))
        db.session.execute(delete(Submission))
        db.session.commit()


def test_summary_route_keys_periods_and_default_measure(client, db):
    make_areas()
    caravan = make_caravan("08.587.01.13", first_day=dt.date(2026, 11, 27))
    make_tally(caravan, day=dt.date(2026, 11, 28), specialty="OPH", lines=[
        ("consultations", "F", "50-64", None, 12), ("glasses", "F", "50-64", None, 7),
    ])
    make_tally(caravan, day=dt.date(2026, 11, 28), specialty="OPH", status="rejected",
               lines=[("consultations", "M", "50-64", None, 100)])
    admin = make_user("admin")
    db.session.commit()
    response = client.get("/api/v1/summary?by=province,specialty,week,month,quarter,year,day",
                          headers=auth(admin))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["total"] == 12 and body["row_count"] == 1
    row = body["rows"][0]
    assert row["province"] == "08.587" and row["province_name_fr"] == "Zagora"
    assert row["province_name_ar"] == "زاكورة"
    assert (row["week"], row["month"], row["quarter"], row["year"], row["day"]) == (
        "2026-11-23", "2026-11", "2026-Q4", "2026", "2026-11-28")
    assert row["count"] == 12
    response = client.get("/api/v1/summary?by=measure", headers=auth(admin))
    assert {r["measure"]: r["count"] for r in response.json["rows"]} == {
        "consultations": 12, "glasses": 7}


def test_summary_refuses_unknown_dimensions(client, db):
    admin = make_user("admin")
    db.session.commit()
    response = client.get("/api/v1/summary?by=province,colour", headers=auth(admin))
    assert response.status_code == 422
    assert "by" in response.json["errors"]


def test_summary_and_needs_refuse_a_region_that_is_not_two_digits(client, db):
    admin = make_user("admin")
    db.session.commit()
    header = {**auth(admin), "Accept-Language": "en"}
    for path, field in (("/api/v1/summary?by=region&region=8x", "region[0]"),
                        ("/api/v1/summary?region=08,8", "region[1]"),
                        ("/api/v1/needs?specialty=OPH&region=008", "region[0]")):
        response = client.get(path, headers=header)
        assert response.status_code == 422, path
        assert response.json["errors"] == {field: ["A region code is two digits, e.g. 08."]}
    assert client.get("/api/v1/summary?by=region&region=08", headers=header).status_code == 200


def test_the_region_range_keeps_exactly_the_regions_codes(app, db):
    """The range added for the rollups' index (queries._region_range) never drops a code of the
    regions asked for: the same codes with and without it, on each engine's own collation."""
    from sqlalchemy import literal, select, union_all

    from fieldsvc.insights.queries import _area_prefix, _region_range

    codes = ["01.011.01.01", "07.071.05.09", "08", "08.587", "08.587.01.13", "08.999.99.99",
             "09.091.01.01", "1", "10.101.01.01", "11.111.11.11", "12.121.01.01", "12.999.99.99"]
    table = union_all(*(select(literal(code).label("code")) for code in codes)).subquery()
    code = table.c.code
    for regions in (["08"], ["07", "09"], ["01", "12"], ["12"], ["10", "11"]):
        exact = select(code).where(_area_prefix(code, "region").in_(regions))
        ranged = exact.where(*_region_range(code, regions))
        found = {row for row, in db.session.execute(ranged)}
        assert found == {row for row, in db.session.execute(exact)}
        assert found == {c for c in codes if c[:2] in regions}
    assert _region_range(code, ["8x"]) == []

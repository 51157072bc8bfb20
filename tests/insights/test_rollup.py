"""The summary rollup answers exactly what the raw lines answer, however far behind its fold is.

Tallies go in through the API (new, amended, reviewed, rejected and amended back), the fold runs
now and then for part of them, and after every step the summaries read through the rollup equal
the same summaries summed from the raw lines, and so do need scores' visits (caravan-days).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from flask import current_app
from sqlalchemy import func, select, text

from fieldsvc.accounts.services import get_or_create_organization
from fieldsvc.insights import needs, rollup
from fieldsvc.insights.models import TallyRollup, TallyRollupMonth, TallyRollupYear
from fieldsvc.insights.queries import SummaryQuery, summary_rows
from fieldsvc.tallies.models import UNROLLED
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user
from tests.tallies.helpers import DAY

QUERIES = [
    SummaryQuery(),
    SummaryQuery(by=["province", "specialty"], start=DAY),
    SummaryQuery(by=["region", "sex", "age_band"]),
    SummaryQuery(by=["region", "commune", "month"], regions=["08"]),
    SummaryQuery(by=["commune", "measure", "condition", "day"]),
    SummaryQuery(by=["commune", "quarter", "specialty", "measure", "sex", "age_band"]),
    SummaryQuery(by=["week", "sex"], specialties=["OPH"], sexes=["F"], end=DAY),
    SummaryQuery(by=["year"], measures=["turned_away", "referrals"], communes=["08.587.09.23"]),
    # Whole months: read from the month rollup.
    SummaryQuery(by=["province", "specialty", "quarter"], start=DAY.replace(day=1),
                 end=(DAY.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                 - dt.timedelta(days=1)),
    SummaryQuery(by=["commune", "measure", "sex", "age_band"], specialties=["GEN"]),
    # Whole years, no commune: read from the year rollup.
    SummaryQuery(by=["province", "specialty"], start=DAY.replace(month=1, day=1),
                 end=DAY.replace(month=12, day=31)),
    SummaryQuery(by=["year", "measure"], regions=["08"], provinces=["08.587"]),
    SummaryQuery(by=["region", "specialty"], sexes=["M"], end=DAY.replace(month=12, day=31)),
]


def _lines(rng: random.Random) -> list[dict]:
    keys = rng.sample([(m, s, b, c) for m in ("consultations", "turned_away", "referrals")
                       for s in ("F", "M") for b in ("0-4", "15-24", "65+")
                       for c in (None, "VII")], rng.randint(1, 5))
    return [{"measure": m, "sex": s, "age_band": b, "condition": c, "count": rng.randint(0, 9)}
            for m, s, b, c in keys]


def _by_caravan(caravans: list[int], organizations: list[int]) -> list[SummaryQuery]:
    """Summaries the day rollup answers through its caravan: filters and dimensions."""
    return [
        SummaryQuery(by=["region", "specialty"], organizations=organizations[:1]),
        SummaryQuery(by=["caravan", "day", "sex"]),
        SummaryQuery(by=["organization", "measure"]),
        SummaryQuery(by=["organization", "month"], organizations=organizations),
        SummaryQuery(by=["commune", "month"], caravans=caravans[1:]),
        SummaryQuery(organizations=organizations[1:], start=DAY, end=DAY),
    ]


def _raw(function, *args):  # noqa: ANN001, ANN202
    current_app.config["SUMMARY_ROLLUP"] = False
    try:
        return function(*args)
    finally:
        current_app.config["SUMMARY_ROLLUP"] = True


def _unrolled(db) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM submission WHERE {UNROLLED}"))


def _check(db, step: str, queries: list[SummaryQuery]) -> None:
    db.session.rollback()
    for query in queries:
        assert summary_rows(query) == _raw(summary_rows, query), (step, query)
    for specialty in ("OPH", "GEN"):
        window = (specialty, DAY - dt.timedelta(days=30), DAY + dt.timedelta(days=1))
        assert needs._visits(*window) == _raw(needs._visits, *window), (step, specialty)
    db.session.rollback()


def test_rollup_equals_the_raw_lines_through_submissions_amendments_and_reviews(client, db):
    make_areas()
    zagora = make_caravan("08.587.01.13", first_day=DAY,
                          sites=(("École Al Amal", 30.33, -5.84), ("Tamegroute", 30.26, -5.68)))
    ouahat = make_caravan("07.351.02.07", first_day=DAY, sites=())
    # Another caravan in Zagora's commune, the same days, two organizers (one shared).
    atlas = make_caravan("08.587.01.13", first_day=DAY, title="Caravane Atlas", sites=(),
                         organizers=("Association Atlas", "Wahat Al-Khair"))
    db.session.flush()
    zagora.sites[1].commune_code = "08.587.09.23"  # lines there count in the site's commune
    phones = [(caravan, make_enrollment(caravan)[1]) for caravan in (zagora, ouahat, atlas)]
    organizations = [get_or_create_organization(name).id
                     for name in ("Wahat Al-Khair", "Association Atlas")]
    queries = QUERIES + _by_caravan([zagora.id, atlas.id], organizations)
    coordinator = auth(make_user("coordinator", regions=["08", "07"]))
    db.session.commit()
    rng = random.Random(15)
    stored: list[tuple[dict, dict]] = []
    versions: dict[str, int] = {}  # a review names the version it judges
    folded_with_rows = False
    for step in range(45):
        action = rng.choice(["submit"] * 4 + ["amend", "amend", "review", "review", "fold"])
        if action == "submit" or not stored:
            caravan, header = rng.choice(phones)
            sites = [None, *[site.id for site in caravan.sites]]
            body = {"id": str(uuid.uuid4()), "caravan_id": caravan.id,
                    "site_id": rng.choice(sites),
                    "day": (DAY + dt.timedelta(days=rng.randint(0, 1))).isoformat(),
                    "specialty": rng.choice(["OPH", "GEN"]), "lines": _lines(rng)}
            response = client.post("/api/v1/submissions", json=body, headers=header)
            assert response.status_code == 201, response.json
            stored.append((body, header))
            versions[body["id"]] = response.json["version"]
        elif action == "amend":
            body, header = rng.choice(stored)
            body = {**body, "lines": _lines(rng), "specialty": rng.choice(["OPH", "GEN"])}
            response = client.put(f"/api/v1/submissions/{body['id']}",
                                  json={k: v for k, v in body.items() if k != "id"},
                                  headers=header)
            assert response.status_code == 200, response.json
            versions[body["id"]] = response.json["version"]
        elif action == "review":
            body, _ = rng.choice(stored)
            status = rng.choice(["approved", "flagged", "rejected", "rejected"])
            response = client.post(f"/api/v1/submissions/{body['id']}/review",
                                   json={"status": status, "reason": "vu",
                                         "version": versions[body["id"]]},
                                   headers=coordinator)
            assert response.status_code == 200, response.json
        else:
            rollup.fold_batch(rng.randint(1, 4))
            folded_with_rows = folded_with_rows or bool(
                db.session.scalar(select(func.count()).select_from(TallyRollup)))
        _check(db, f"step {step}: {action}", queries)
    assert folded_with_rows  # the rollup was read with rows in it, not only corrections
    # Folded entirely, the rollup alone answers (nothing left to correct), still exactly.
    rollup.fold()
    assert _unrolled(db) == 0
    _check(db, "all folded", queries)
    # A rebuild from scratch gives the same tables as the folds did.
    def tables() -> list[list[tuple]]:
        return [sorted(tuple(row)[1:] for row in db.session.execute(select(model)).all())
                for model in (TallyRollup, TallyRollupMonth, TallyRollupYear)]

    folded = tables()
    assert folded[2] and len(folded[2]) < len(folded[1]) < len(folded[0])
    rollup.rebuild()
    assert tables() == folded
    _check(db, "rebuilt", queries)


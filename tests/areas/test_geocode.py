"""`areas geocode` fills communes without a point, rate-limited and resumable (fake geocoder)."""

from __future__ import annotations

from dataclasses import dataclass

from fieldsvc.areas.models import Area
from tests.factories import make_areas


@dataclass
class Location:
    latitude: float
    longitude: float


class FakeGeocoder:
    def __init__(self, answers: dict[str, Location | None]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    def __call__(self, query: str):
        self.queries.append(query)
        for name, location in self.answers.items():
            if query.startswith(name):
                return location
        return None


def _unplace(db, *codes: str) -> None:
    for code in codes:
        area = db.session.get(Area, code)
        area.lat = area.lon = area.point_source = None
    db.session.commit()


def test_geocode_fills_only_missing_points_and_resumes(app, db, runner):
    make_areas()
    _unplace(db, "08.587.09.23", "08.577.01.11")
    fake = FakeGeocoder({"M'Hamid El Ghizlane": Location(29.8253, -5.7236), "Tinghir": None})
    app.config["GEOCODER"] = fake
    try:
        result = runner.invoke(args=["areas", "geocode"])
        assert result.exit_code == 0, result.output
        assert "Geocoded 1 communes; 1 still without a point." in result.output
        # Only the two communes without a point were asked, with their province and country.
        assert sorted(fake.queries) == ["M'Hamid El Ghizlane, Zagora, Maroc", "Tinghir, Tinghir, Maroc"]
        db.session.expire_all()
        mhamid = db.session.get(Area, "08.587.09.23")
        assert (mhamid.lat, mhamid.lon, mhamid.point_source) == (29.8253, -5.7236, "geocoded")
        assert db.session.get(Area, "08.587.01.13").point_source == "geonames"  # untouched
        db.session.commit()

        # Resumable: a second run asks only for what is still missing.
        fake.queries.clear()
        fake.answers["Tinghir"] = Location(31.5147, -5.5328)
        result = runner.invoke(args=["areas", "geocode"])
        assert result.exit_code == 0, result.output
        assert fake.queries == ["Tinghir, Tinghir, Maroc"]
        db.session.expire_all()
        assert db.session.get(Area, "08.577.01.11").point_source == "geocoded"
        # Provinces take the population-weighted centroid of their communes' points.
        zagora = db.session.get(Area, "08.587")
        assert zagora.point_source == "derived"
        assert 29.8 < zagora.lat < 30.4
    finally:
        app.config.pop("GEOCODER")


def test_geocode_refuses_answers_outside_morocco(app, db, runner):
    make_areas()
    _unplace(db, "08.587.09.23")
    app.config["GEOCODER"] = FakeGeocoder({"M'Hamid": Location(48.85, 2.35)})  # Paris
    try:
        result = runner.invoke(args=["areas", "geocode"])
        assert result.exit_code == 0, result.output
        assert "not found" in result.output
        db.session.expire_all()
        assert db.session.get(Area, "08.587.09.23").lat is None
    finally:
        app.config.pop("GEOCODER")


def test_geocode_survives_an_unreachable_geocoder(app, db, runner):
    from geopy.exc import GeocoderUnavailable

    make_areas()
    _unplace(db, "08.587.09.23")
    calls = []

    def offline(query: str):
        calls.append(query)
        raise GeocoderUnavailable("network unreachable")

    app.config.update(GEOCODER=offline, GEOCODER_ERROR_WAIT_SECONDS=0)
    try:
        result = runner.invoke(args=["areas", "geocode"])
        assert result.exit_code == 0, result.output
        assert "1 still without a point" in result.output
        assert len(calls) == 3  # tried, then retried twice
    finally:
        app.config.pop("GEOCODER")
        app.config.pop("GEOCODER_ERROR_WAIT_SECONDS")

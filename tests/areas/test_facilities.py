"""Importing the Ministry of Health lists as published, and each commune's nearest able facility."""

from __future__ import annotations

import random

import pytest
from geopy.distance import geodesic
from sqlalchemy import select

from fieldsvc.areas.facilities import (
    CATEGORY_TREATS,
    clean_name,
    import_facilities,
    nearest,
    recompute_distances,
    strip_suffix,
    treats,
)
from fieldsvc.areas.models import Area, Facility, FacilityDistance
from tests.factories import make_areas

HOSPITALS = """Liste nominative des établissements hospitaliers par catégorie 2024;;;;;;;
;;;;;;;
Région;Délégation;Commune;Etablissement hospitalier;Catégorie;;;
Drâa-Tafilalet;Zagora;Zagora (Mun.);Ed-Derrak;HP;;;
Drâa-Tafilalet;Tinghir;Tinghir (Mun.);Hôpital de Tinghir;HPr;;;
Marrakech-Safi;Marrakech;Ouahat Sidi Brahim;Ar-Razi;HPsyR;;;
Tanger-Tetouan-Al Hoceima;Tanger Assilah;Assilah (Mun.);Mohamed V;HP;;;
Drâa-Tafilalet;Atlantis;Zagora;Hôpital perdu;HP;;;
"""

PRIMARY_CARE = """Répartition des Etablissements de soins de santé primaire  2024,,,,,,,
,,,,,,,
Région,Delegation,Commune,Nom établissement,Catégorie,,,
Drâa-Tafilalet,Zagora,M'hamid El Ghizlane,9-Jul,CSR-1,,,
Drâa-Tafilalet,Zagora,Mhamid El Ghizlane,Laboratoire provincial,LSP,,,
Marrakech-Safi,Marrakech,Ouahat Sidi Brahim,Oulad  Belaaguid ,CSR-2,,,
Marrakech-Safi,Marrakech,Ouahat Sidi Brahim,Oulad  Belaaguid ,CSR-2,,,
Drâa-Tafilalet,Zagora,Nowhere,Ghost,DR,,,
"""


@pytest.fixture
def lists(tmp_path):
    hospitals = tmp_path / "hopitaux.csv"
    hospitals.write_bytes(b"\xef\xbb\xbf" + HOSPITALS.encode("utf-8"))  # BOM, `;`
    primary = tmp_path / "essp.csv"
    primary.write_bytes(PRIMARY_CARE.encode("cp1252"))  # no BOM, `,`, Windows accents
    return hospitals, primary


def test_import_matches_communes_by_name_within_the_province(db, lists):
    make_areas()
    hospitals, primary = lists
    report = import_facilities(hospitals)
    assert (report.rows, report.matched, report.added) == (5, 4, 4)
    assert [(line, reason) for line, _, reason in report.unmatched] == [
        (8, "unknown délégation 'Atlantis'")
    ]
    report = import_facilities(primary)
    assert (report.rows, report.matched, report.added, report.kept) == (5, 4, 3, 1)
    assert report.unmatched == [(8, "Zagora / Nowhere / Ghost", "no commune 'Nowhere' in 08.587")]
    rows = set(db.session.execute(select(Facility.commune_code, Facility.name, Facility.category)))
    assert rows == {
        ("08.587.01.13", "Ed-Derrak", "HP"),
        ("08.577.01.11", "Hôpital de Tinghir", "HPr"),
        ("07.351.02.07", "Ar-Razi", "HPsyR"),
        ("01.511.01.01", "Mohamed V", "HP"),
        ("08.587.09.23", "9 Juillet", "CSR-1"),  # a spreadsheet had made it a date
        ("08.587.09.23", "Laboratoire provincial", "LSP"),
        ("07.351.02.07", "Oulad Belaaguid", "CSR-2"),
    }


def test_import_is_idempotent(db, lists):
    make_areas()
    for path in lists:
        import_facilities(path)
    db.session.commit()
    again = [import_facilities(path) for path in lists]
    assert [r.added for r in again] == [0, 0]
    assert [r.kept for r in again] == [4, 4]
    assert len(db.session.scalars(select(Facility)).all()) == 7


def test_import_command_reports_unmatched_rows_and_distances(db, runner, lists):
    make_areas()
    db.session.commit()
    result = runner.invoke(args=["facilities", "import", *map(str, lists)])
    assert result.exit_code == 0, result.output
    assert "5 rows, 4 matched a commune (4 new, 0 already there), 1 unmatched" in result.output
    assert "line 8: Zagora / Nowhere / Ghost — no commune 'Nowhere' in 08.587" in result.output
    assert "unknown délégation 'Atlantis'" in result.output
    assert "Nearest able facility computed for" in result.output
    assert db.session.scalar(select(FacilityDistance).limit(1)) is not None


def test_unreadable_list_is_refused(db, tmp_path):
    make_areas()
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no header line"):
        import_facilities(path)


def test_nearest_able_facility_per_specialty(db, lists):
    make_areas()
    for path in lists:
        import_facilities(path)
    written = recompute_distances()
    distances = {
        (d.commune_code, d.specialty_code): d
        for d in db.session.scalars(select(FacilityDistance))
    }
    assert written == len(distances)

    def km(a: str, b: str) -> float:
        one, two = db.session.get(Area, a), db.session.get(Area, b)
        return geodesic((one.lat, one.lon), (two.lat, two.lon)).km

    def facility(code: str, specialty: str) -> Facility:
        return db.session.get(Facility, distances[(code, specialty)].facility_id)

    # M'Hamid has a rural health centre (GEN) and a laboratory (treats nothing).
    assert distances[("08.587.09.23", "GEN")].km == 0
    assert facility("08.587.09.23", "GEN").category == "CSR-1"
    # Ophthalmology needs a hospital: Zagora's, the nearest.
    assert facility("08.587.09.23", "OPH").name == "Ed-Derrak"
    assert distances[("08.587.09.23", "OPH")].km == pytest.approx(
        km("08.587.09.23", "08.587.01.13"), abs=0.01
    )
    # Ouahat Sidi Brahim's psychiatric hospital treats PSY only.
    assert facility("07.351.02.07", "PSY").name == "Ar-Razi"
    assert distances[("07.351.02.07", "PSY")].km == 0
    assert facility("07.351.02.07", "OPH").category in {"HP", "HPr"}
    hospitals = ("08.587.01.13", "08.577.01.11", "01.511.01.01")
    expected = min(km("07.351.02.07", c) for c in hospitals)
    assert distances[("07.351.02.07", "OPH")].km == pytest.approx(expected, abs=0.01)
    # Every commune with a point gets every catalog specialty (hospitals treat them all).
    from fieldsvc.catalog.models import Specialty

    catalog = set(db.session.scalars(select(Specialty.code)))
    communes = {"08.587.01.13", "08.587.09.23", "08.577.01.11", "07.351.02.07", "01.511.01.01"}
    assert set(distances) == {(c, s) for c in communes for s in catalog}


def test_category_table():
    assert treats("HP", "OPH") and treats("HR", "GEN") and treats("CHU", "CAR")
    assert treats("HPr", "PED") and treats("HIR", "URO")
    assert treats("CSR-1", "GEN") and treats("CSU-2", "GEN") and treats("DR", "GEN")
    assert not treats("CSR-1", "OPH") and not treats("DR", "PED")
    assert treats("HPsyP", "PSY") and not treats("HPsyR", "GEN") and not treats("HPsy", "OPH")
    assert not any(treats("LSP", s) for s in ("GEN", "OPH", "PSY"))
    assert not treats("CRO", "GEN")
    assert treats("NEW", "GEN") is False  # an unknown category treats nothing until documented
    assert "LSP" in CATEGORY_TREATS and CATEGORY_TREATS["LSP"] == frozenset()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("9-Jul", "9 Juillet"), ("09-juil.", "9 Juillet"), ("11-janv.", "11 Janvier"),
     ("25-Mar", "25 Mars"), ("Targuist    ", "Targuist"), ("Hay  Salam", "Hay Salam"),
     ("2 Mars", "2 Mars"), ("CSU 20-Août", "CSU 20-Août")],
)
def test_clean_name_undoes_spreadsheet_dates_and_spaces(raw, clean):
    assert clean_name(raw) == clean


def test_strip_suffix():
    assert strip_suffix("Imzouren (Mun.)") == "Imzouren"
    assert strip_suffix("Agdal (Arrond.)") == "Agdal"
    assert strip_suffix("Ait Youssef Ou Ali") == "Ait Youssef Ou Ali"


def test_shortlist_finds_the_geodesic_nearest():
    rng = random.Random(7)
    candidates = [(i, rng.uniform(21, 36), rng.uniform(-17, -1)) for i in range(150)]
    for _ in range(25):
        origin = (rng.uniform(21, 36), rng.uniform(-17, -1))
        fid, km = nearest(origin, candidates)
        best = min((geodesic(origin, (lat, lon)).km, i) for i, lat, lon in candidates)
        assert (fid, km) == (best[1], round(best[0], 3))
    assert nearest((30.0, -6.0), []) is None

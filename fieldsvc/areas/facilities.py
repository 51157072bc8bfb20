"""Health facilities from the Ministry of Health lists, and each commune's nearest able facility.

The published CSVs are untidy (a title line before the header, a BOM or not, `;` or `,`, names a
spreadsheet turned into dates), so the reader tolerates all of it. A facility takes the point of
its row's commune, found by folded name within its province: the lists carry no coordinates.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, select

from fieldsvc.areas.models import Area, Facility, FacilityDistance
from fieldsvc.areas.text import fold
from fieldsvc.catalog.models import Specialty
from fieldsvc.extensions import db

# Which categories can treat which specialty. HOSPITAL stands for every specialty of the catalog
# (general medicine and every specialty an admin adds): the access component of the need score
# takes "a hospital for specialties, any facility for GEN".
#
#   category         what it is                                      treats
#   CHU / HIR        centre hospitalier universitaire, interregional  every specialty
#   HR               hôpital régional                                 every specialty
#   HP               hôpital provincial / préfectoral                 every specialty
#   HPr              hôpital de proximité                             every specialty
#   HPsy (P, R), CPU psychiatric hospital / university centre         PSY only
#   CRO              centre régional d'oncologie                      oncology (not in catalog)
#   CSU, CSR (-1/-2) urban / rural health centre                      GEN
#   DR               dispensaire rural                                GEN
#   CRSR             centre de référence de santé reproductive        GEN, GYN
#   CDTMR            centre de diagnostic tuberculose / respiratoire  PNE
#   LSP              laboratoire de santé publique                    nothing
HOSPITAL = "*"
CATEGORY_TREATS: dict[str, frozenset[str]] = {
    "CHU": frozenset({HOSPITAL}),
    "HIR": frozenset({HOSPITAL}),
    "HR": frozenset({HOSPITAL}),
    "HP": frozenset({HOSPITAL}),
    "HPr": frozenset({HOSPITAL}),
    "HPsy": frozenset({"PSY"}),
    "CPU": frozenset({"PSY"}),
    "CRO": frozenset(),
    "CSU": frozenset({"GEN"}),
    "CSR": frozenset({"GEN"}),
    "DR": frozenset({"GEN"}),
    "CRSR": frozenset({"GEN", "GYN"}),
    "CDTMR": frozenset({"PNE"}),
    "LSP": frozenset(),
}


def category_family(category: str) -> str:
    """CSR-1 → CSR, HPsyP → HPsy; the key of CATEGORY_TREATS."""
    base = category.strip().split("-")[0].strip()
    if base.lower().startswith("hpsy"):
        return "HPsy"
    for known in CATEGORY_TREATS:
        if base.lower() == known.lower():
            return known
    return base


def treats(category: str, specialty: str) -> bool:
    able = CATEGORY_TREATS.get(category_family(category), frozenset())
    return specialty in able or HOSPITAL in able


# Délégations whose name differs from HCP's province name (compact folded name → HCP code).
PROVINCE_ALIASES: dict[str, str] = {
    "taroudant": "09.541",  # HCP: Taroudannt
    "fkihbensaleh": "05.255",  # HCP: Fquih Ben Salah
    "fkihbensalah": "05.255",
    "rehamena": "07.427",  # HCP: Rehamna
    "mohammedia": "06.371",  # HCP: Mohammadia
    "ainchok": "06.141.01.40",  # HCP: Aïn-Chock (prefecture of arrondissements)
}

# Communes whose name in the Ministry's lists differs from HCP's beyond spelling (the spelling
# variants — Oulad/Ouled, Abdallah/Abdellah, Gh/Rh, doubled letters — are matched by
# `skeleton`): (province code, compact folded name) → HCP commune code.
COMMUNE_ALIASES: dict[tuple[str, str], str] = {
    ("07.191", "elkelaadessraghna"): "07.191.01.03",  # HCP: Kelâat Sraghna (the town)
    ("06.141.01.00", "elmaarif"): "06.141.01.0",  # arrondissement Maârif, Casablanca
    ("01.511", "almadina"): "01.511.01.0",  # arrondissement Médina, Tanger
}

_ARTICLES = {"el", "al", "de", "des", "du", "d", "la", "le", "l"}
_VARIANTS = (("oulad", "ouled"), ("abdallah", "abdellah"), ("moulay", "my"), ("idriss", "driss"),
             ("yahya", "yahia"), ("gh", "rh"), ("q", "k"), ("ou", "u"))


def compact(text: str) -> str:
    """fold() without spaces: M'diq-Fnideq, Mdiq-Fnideq and Mdiq Fnideq are one key."""
    return fold(text).replace(" ", "")


def skeleton(text: str) -> str:
    """A spelling-blind key: no articles, common transliteration variants unified, no vowels,
    no doubled letters (Bni Abdallah ~ Bni Abdellah, Ghafsai ~ Rhafsai, Zemamra ~ Zmamra)."""
    key = "".join(word for word in fold(text).split() if word not in _ARTICLES)
    for variant, canonical in _VARIANTS:
        key = key.replace(variant, canonical)
    key = re.sub(r"[aeiouy]", "", key)
    return re.sub(r"(.)\1+", r"\1", key)


_SUFFIX = re.compile(r"\s*\((mun|arrond|ar|m|c|cr|cu)\.?\)\s*$", re.IGNORECASE)
_MONTHS = {
    "jan": "Janvier", "janv": "Janvier", "feb": "Février", "fev": "Février", "fevr": "Février",
    "mar": "Mars", "mars": "Mars", "apr": "Avril", "avr": "Avril", "may": "Mai", "mai": "Mai",
    "jun": "Juin", "juin": "Juin", "jul": "Juillet", "juil": "Juillet", "aug": "Août",
    "aou": "Août", "aout": "Août", "sep": "Septembre", "sept": "Septembre", "oct": "Octobre",
    "nov": "Novembre", "dec": "Décembre",
}
_SPREADSHEET_DATE = re.compile(r"^(\d{1,2})[-/ ]([A-Za-zéèûô]{3,5})\.?$")


def clean_name(name: str) -> str:
    """Collapse spaces, and undo a spreadsheet's dates: `9-Jul`, `09-juil.` → `9 Juillet`."""
    name = " ".join(name.split())
    match = _SPREADSHEET_DATE.match(name)
    if match:
        month = _MONTHS.get(fold(match.group(2)))
        if month:
            return f"{int(match.group(1))} {month}"
    return name


def strip_suffix(commune: str) -> str:
    """`Imzouren (Mun.)` → `Imzouren`, `Agdal (Arrond.)` → `Agdal`."""
    return _SUFFIX.sub("", commune).strip()


@dataclass
class ImportReport:
    path: str
    rows: int = 0
    matched: int = 0
    added: int = 0
    kept: int = 0
    unmatched: list[tuple[int, str, str]] = field(default_factory=list)


class _Gazetteer:
    """HCP names by province, for matching the Ministry's délégation and commune columns."""

    def __init__(self) -> None:
        from fieldsvc.areas.points import read_gz_csv

        self.provinces: dict[str, str] = {}
        self.communes: dict[str, dict[str, str]] = defaultdict(dict)
        self.skeletons: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.parent: dict[str, str] = {}
        province_codes = set()
        for code, name, kind in db.session.execute(
            select(Area.code, Area.name_fr, Area.kind).where(Area.level == "province")
        ):
            self.provinces[compact(name)] = code
            province_codes.add(code)
            if kind == "prefecture_of_arrondissements":
                self.parent[code] = code[:6]  # 06.141.01.40 → Casablanca's prefecture 06.141
        for key, code in PROVINCE_ALIASES.items():
            if code in province_codes:
                self.provinces.setdefault(key, code)
        communes = {
            code: (name, province)
            for code, name, province in db.session.execute(
                select(Area.code, Area.name_fr, Area.province_code).where(Area.level == "commune")
            )
        }

        def add(province: str, name: str, code: str) -> None:
            self.communes[province].setdefault(compact(name), code)
            self.communes[province].setdefault(
                "".join(w for w in fold(name).split() if w not in _ARTICLES), code)
            self.skeletons[province][skeleton(name)].add(code)

        for code, (name, province) in communes.items():
            add(province or "", name, code)
        # Arrondissements name the city's commune, under the city's province and, in Casablanca,
        # under their own prefecture of arrondissements (06.141.01.41 → 06.141.01.40).
        for row in read_gz_csv("attributes", "arrondissements.csv.gz"):
            city = row["commune_code"]
            if city not in communes:
                continue
            add(communes[city][1] or "", row["name_fr"], city)
            prefecture = row["code"][:-1] + "0"
            if prefecture in province_codes:
                add(prefecture, row["name_fr"], city)
        self.aliases = {key: code for key, code in COMMUNE_ALIASES.items() if code in communes}

    def province(self, delegation: str) -> str | None:
        return self.provinces.get(compact(delegation))

    def commune(self, province: str, name: str) -> str | None:
        """HCP code of a commune of the province: alias, exact, without articles, by skeleton."""
        name = strip_suffix(name)
        key = compact(name)
        for scope in (province, self.parent.get(province)):
            if scope is None:
                continue
            if (scope, key) in self.aliases:
                return self.aliases[(scope, key)]
            names = self.communes.get(scope, {})
            bare = "".join(w for w in fold(name).split() if w not in _ARTICLES)
            for candidate in (key, bare):
                if candidate in names:
                    return names[candidate]
            matches = self.skeletons.get(scope, {}).get(skeleton(name), set())
            if len(matches) == 1:  # only an unambiguous spelling variant
                return next(iter(matches))
        return None


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


_COLUMNS = {
    "region": ("region",),
    "delegation": ("delegation", "province", "prefecture"),
    "commune": ("commune",),
    "category": ("categorie", "category"),
    "name": ("etablissement", "nom", "name", "formation"),
}


def read_facility_rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, {region, delegation, commune, name, category}) for each data row."""
    lines = text.splitlines()
    header_index = None
    for index, line in enumerate(lines[:30]):
        folded = fold(line)
        if "commune" in folded and "categorie" in folded:
            header_index = index
            break
    if header_index is None:
        raise ValueError("no header line with Commune and Catégorie columns in the first 30 lines")
    header_line = lines[header_index]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_index:])), delimiter=delimiter)
    header = [fold(cell) for cell in next(reader)]
    positions: dict[str, int] = {}
    for column, prefixes in _COLUMNS.items():
        for index, cell in enumerate(header):
            if index not in positions.values() and any(cell.startswith(p) for p in prefixes):
                positions[column] = index
                break
    missing = {"delegation", "commune", "category", "name"} - set(positions)
    if missing:
        raise ValueError(f"missing columns: {', '.join(sorted(missing))}")
    for offset, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        row = {column: (cells[i].strip() if i < len(cells) else "")
               for column, i in positions.items()}
        yield header_index + 1 + offset, row


def import_facilities(path: str | Path) -> ImportReport:
    """Add the facilities of one Ministry list (idempotent); report every row not placed."""
    path = Path(path)
    report = ImportReport(path=str(path))
    gazetteer = _Gazetteer()
    keys = select(Facility.commune_code, Facility.name, Facility.category)
    existing = {tuple(row) for row in db.session.execute(keys)}
    new: list[dict[str, str]] = []
    for line, row in read_facility_rows(_decode(path.read_bytes())):
        report.rows += 1
        description = " / ".join(row.get(c, "") for c in ("delegation", "commune", "name"))
        category = " ".join(row["category"].split())
        name = clean_name(row["name"])
        if not category or not name:
            report.unmatched.append((line, description, "no name or category"))
            continue
        province = gazetteer.province(row["delegation"])
        if province is None:
            reason = f"unknown délégation {row['delegation']!r}"
            report.unmatched.append((line, description, reason))
            continue
        commune = gazetteer.commune(province, row["commune"])
        if commune is None:
            report.unmatched.append(
                (line, description, f"no commune {strip_suffix(row['commune'])!r} in {province}")
            )
            continue
        report.matched += 1
        key = (commune, name[:250], category[:12])
        if key in existing:
            report.kept += 1
            continue
        existing.add(key)
        new.append({"commune_code": commune, "name": key[1], "category": key[2],
                    "source_file": path.name[:200]})
    if new:
        db.session.execute(insert(Facility), new)
    report.added = len(new)
    db.session.flush()
    return report


# The Ministry of Health's 2024 lists (data.gov.ma), shipped byte for byte as published.
SHIPPED_LISTS = tuple(Path(__file__).parent / "data" / name
                      for name in ("moh-hospitals-2024.csv", "moh-primary-care-2024.csv"))


def import_shipped_lists() -> list[ImportReport]:
    """Import the lists fieldsvc ships (idempotent); the caller recomputes distances."""
    return [import_facilities(path) for path in SHIPPED_LISTS]


def _great_circle_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(np.minimum(1.0, a)))


def nearest(
    origin: tuple[float, float], candidates: list[tuple[int, float, float]]
) -> tuple[int, float] | None:
    """(facility id, geodesic km) of the nearest candidate (id, lat, lon).

    Great-circle distances shortlist: the geodesic and the great-circle distance differ by well
    under 1 %, so every candidate within 1 % (+100 m) of the great-circle minimum is measured
    with geopy's geodesic, and the smallest geodesic distance wins (ties: lowest id).
    """
    if not candidates:
        return None
    ids = np.array([c[0] for c in candidates])
    lats = np.array([c[1] for c in candidates], dtype=float)
    lons = np.array([c[2] for c in candidates], dtype=float)
    return _nearest(origin, ids, lats, lons)


def _nearest(origin: tuple[float, float], ids: np.ndarray, lats: np.ndarray,
             lons: np.ndarray) -> tuple[int, float]:
    from geopy.distance import geodesic

    circle = _great_circle_km(origin[0], origin[1], lats, lons)
    shortlist = np.nonzero(circle <= circle.min() * 1.01 + 0.1)[0]
    km, fid = min(
        (geodesic(origin, (float(lats[i]), float(lons[i]))).km, int(ids[i])) for i in shortlist
    )
    return fid, round(km, 3)


def recompute_distances() -> int:
    """Recompute every commune's nearest able facility per catalog specialty; returns rows written.

    Call it whenever areas or facilities change. Facilities take their commune's point.
    """
    specialties = list(db.session.scalars(select(Specialty.code).order_by(Specialty.code)))
    facilities = db.session.execute(
        select(Facility.id, Facility.category, Area.lat, Area.lon)
        .join(Area, Area.code == Facility.commune_code)
        .where(Area.lat.is_not(None), Area.lon.is_not(None))
        .order_by(Facility.id)
    ).all()
    communes = db.session.execute(
        select(Area.code, Area.lat, Area.lon)
        .where(Area.level == "commune", Area.lat.is_not(None), Area.lon.is_not(None))
    ).all()
    # Specialties with the same able facilities share one computation (all hospital specialties).
    able: dict[tuple[int, ...], list[str]] = defaultdict(list)
    located: dict[int, tuple[float, float]] = {}
    for fid, _, f_lat, f_lon in facilities:
        located[fid] = (f_lat, f_lon)
    for specialty in specialties:
        ids = tuple(fid for fid, category, _, _ in facilities if treats(category, specialty))
        if ids:
            able[ids].append(specialty)
    rows: list[dict] = []
    for ids, codes in able.items():
        # One candidate per distinct point (facilities of a commune share its point).
        by_point: dict[tuple[float, float], int] = {}
        for fid in ids:
            by_point.setdefault(located[fid], fid)
        points = list(by_point.items())
        fids = np.array([fid for _, fid in points])
        lats = np.array([p[0] for p, _ in points], dtype=float)
        lons = np.array([p[1] for p, _ in points], dtype=float)
        for code, lat, lon in communes:
            found = _nearest((lat, lon), fids, lats, lons)
            for specialty in codes:
                rows.append({"commune_code": code, "specialty_code": specialty,
                             "facility_id": found[0], "km": found[1]})
    db.session.execute(delete(FacilityDistance))
    if rows:
        db.session.execute(insert(FacilityDistance), rows)
    db.session.flush()
    return len(rows)

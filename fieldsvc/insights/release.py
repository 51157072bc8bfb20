"""The protected release: one set of linked tables from which every answer without full detail
is a selection, protected together so that combining answers cannot recover a hidden count.

Suppressing each answer on its own lets two answers hide different cells and be subtracted
(docs/privacy.md). Here the tables are fixed, built off the request path, and protected as one
system: primary cells (1..k-1) are hidden, a hypercube search per table proposes complementary
cells, and then a linear-programming audit over *all* tables of a region and measure — the
attacker's own model — hides more cells until no hidden cell can be narrowed below k. Callers
then only select cells; nothing they can ask adds a constraint the audit did not see.

Tables never cross a region (no national margins), so a coordinator's exact knowledge of their
own regions adds nothing about another region; measures are never added together, so each
measure is protected on its own.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import Flask
from sqlalchemy import select

from fieldsvc import background
from fieldsvc.extensions import db
from fieldsvc.insights import suppression
from fieldsvc.insights.models import Release
from fieldsvc.insights.queries import SummaryQuery, summary_rows

if TYPE_CHECKING:  # scipy is imported where the audit runs (see _system)
    from scipy.sparse import csr_matrix

Key = tuple[Any, ...]
ATOM_DIMENSIONS = ("commune", "specialty", "measure", "sex", "age_band", "quarter")
AREA_LENGTH = {"region": 2, "province": 6, "commune": 12}
# The measures a need score reads; only they get the commune table.
NEED_MEASURES = ("consultations", "turned_away", "referrals")
WINDOW_QUARTERS = 8
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TableSpec:
    """One table of the release: an area level, optional specialty and sex × age band, a period."""

    area: str  # region, province or commune
    specialty: bool
    demographics: bool
    period: str  # all, year, quarter or window
    measures: tuple[str, ...] | None = None  # None: every measure

    # Read for every atom of every audit: computed once per table (a frozen dataclass keeps
    # cached_property's value in its __dict__, outside equality and hashing).
    @cached_property
    def dims(self) -> tuple[str, ...]:
        dims = [self.area]
        if self.specialty:
            dims.append("specialty")
        if self.demographics:
            dims += ["sex", "age_band"]
        if self.period != "all":
            dims.append(self.period)
        return tuple(dims)

    @cached_property
    def name(self) -> str:
        return ".".join(self.dims) if self.period != "all" else ".".join(self.dims) + ".all"

    def key_of(self, atom: Sequence[Any], window: frozenset[str]) -> Key | None:
        """The cell of this table an atom (commune, specialty, measure, sex, age band, quarter)
        falls in; None when it is outside the table (another measure, outside the window)."""
        commune, specialty, measure, sex, age_band, quarter = atom
        if self.measures is not None and measure not in self.measures:
            return None
        key: list[Any] = [commune[:AREA_LENGTH[self.area]]]
        if self.specialty:
            key.append(specialty)
        if self.demographics:
            key += [sex, age_band]
        if self.period == "year":
            key.append(quarter[:4])
        elif self.period == "quarter":
            key.append(quarter)
        elif self.period == "window":
            if quarter not in window:
                return None
            key.append("window")
        return tuple(key)


TABLES: tuple[TableSpec, ...] = (
    *(TableSpec(area, specialty, False, period)
      for area in ("region", "province") for specialty in (False, True)
      for period in ("all", "year", "quarter")),
    TableSpec("region", False, True, "all"),
    TableSpec("region", False, True, "year"),
    # By specialty too, the pyramid is all-time only: per year, its small cells linked to the
    # quarter tables made most of a region's specialties by quarter hidden.
    TableSpec("region", True, True, "all"),
    TableSpec("commune", True, False, "window", NEED_MEASURES),
)
TABLES_BY_NAME = {spec.name: spec for spec in TABLES}


# --- the window --------------------------------------------------------------------------------


def quarter_of(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_bounds(quarter: str) -> tuple[dt.date, dt.date]:
    # Years before 1000 have fewer digits ("932-Q3"), and 9999-Q4 has no following day.
    year_text, _, number_text = quarter.rpartition("-Q")
    year, number = int(year_text), int(number_text)
    last_month = 3 * number
    return (dt.date(year, last_month - 2, 1),
            dt.date(year, last_month, calendar.monthrange(year, last_month)[1]))


def window_quarters(today: dt.date) -> list[str]:
    """The need window: the quarter of the release and the seven before it."""
    index = today.year * 4 + (today.month - 1) // 3
    return [f"{i // 4}-Q{i % 4 + 1}" for i in range(index - WINDOW_QUARTERS + 1, index + 1)]


# --- protecting one region and measure -----------------------------------------------------------


@dataclass
class _Cell:
    table: str
    key: Key
    value: int = 0
    members: list[int] = field(default_factory=list)


def protect_group(atoms: Sequence[tuple[Sequence[Any], int]], k: int,
                  window: frozenset[str], tables: Sequence[TableSpec] = TABLES,
                  insiders: Mapping[Any, Sequence[tuple[Sequence[Any], int]]] | None = None,
                  ) -> tuple[dict[tuple[str, Key], _Cell], dict[tuple[str, Key], str]]:
    """Cells of every table over these atoms (one region, one measure) and which to hide.

    The result is audited against the attacker's model (docs/privacy.md): the unknowns are every
    specialty × sex × age band of each commune and quarter that had counted lines (caravans are
    public), except those inside a cell the release shows as zero; every published cell is a
    constraint; each hidden cell must range over at least k. `insiders` maps each organization
    to its own atoms here, which its planners see exactly: the release is audited again as each
    of them would read it (see `_audit_insider`).
    """
    cells: dict[tuple[str, Key], _Cell] = {}
    for atom, value in atoms:
        for spec in tables:
            key = spec.key_of(atom, window)
            if key is not None:
                cell = cells.setdefault((spec.name, key), _Cell(spec.name, key))
                cell.value += value
    unknowns = candidate_atoms({(atom[0], atom[5]) for atom, _ in atoms},
                               {atom[1] for atom, _ in atoms}, atoms[0][0][2],
                               lambda spec, key: (spec.name, key) in cells, window, tables)
    for index, atom in enumerate(unknowns):
        for spec in tables:
            key = spec.key_of(atom, window)
            if key is not None:
                cells[(spec.name, key)].members.append(index)
    hidden: dict[tuple[str, Key], str] = {}
    for spec in tables:
        # Sex and age band move together in a cube: a 2 × 2 swap between two specialties
        # keeps the pyramid's margins where a 2 × 2 × 2 cube would need absent corners.
        dims = list(spec.dims)
        joined = "sex" in dims
        split = dims.index("sex") if joined else -1

        def fold(key: Key, split: int = split) -> Key:
            return key[:split] + ((key[split], key[split + 1]),) + key[split + 2:]

        def unfold(key: Key, split: int = split) -> Key:
            return key[:split] + tuple(key[split]) + key[split + 1:]

        if joined:
            dims[split:split + 2] = ["sex_age"]
        values = {(fold(key) if joined else key): cell.value
                  for (name, key), cell in cells.items() if name == spec.name}
        if not values:
            continue
        parents = {position: suppression.PARENTS[dim] for position, dim in enumerate(dims)
                   if dim in suppression.PARENTS}
        result = suppression.suppress_table(values, k, parents)
        for key, status in result.cells.items():
            original = unfold(key) if joined else key
            if (spec.name, original) in cells:
                hidden[(spec.name, original)] = status
    _audit(cells, len(unknowns), hidden, k)
    for own in (insiders or {}).values():
        _audit_insider(atoms, own, cells, hidden, k, window, tables)
    return cells, hidden


def _audit_insider(atoms: Sequence[tuple[Sequence[Any], int]],
                   own: Sequence[tuple[Sequence[Any], int]], cells: dict[tuple[str, Key], _Cell],
                   hidden: dict[tuple[str, Key], str], k: int, window: frozenset[str],
                   tables: Sequence[TableSpec]) -> None:
    """Hide more cells until an organization that subtracts its own exact lines pins nothing.

    Its planners see their caravans' lines in full detail, so every published cell tells them
    the others' part (the cell minus their own): a small others' part is hidden outright, and the
    others' parts of hidden cells must still range over at least k. The model gives them more
    than they know: the others' atoms are only where others counted something.
    """
    mine: dict[tuple[Any, ...], int] = defaultdict(int)
    for atom, value in own:
        mine[tuple(atom)] += value
    others_atoms = [(atom, value - mine.get(tuple(atom), 0)) for atom, value in atoms]
    others_atoms = [(atom, value) for atom, value in others_atoms if value > 0]
    if not others_atoms:
        return  # everything here is theirs: nothing of anyone else to learn
    others = {ident: _Cell(cell.table, cell.key) for ident, cell in cells.items()}
    for atom, value in others_atoms:
        for spec in tables:
            key = spec.key_of(atom, window)
            if key is not None:
                others[(spec.name, key)].value += value
    for ident, cell in others.items():
        if 0 < cell.value < k and ident not in hidden:
            hidden[ident] = suppression.PRIMARY
    unknowns = candidate_atoms({(atom[0], atom[5]) for atom, _ in others_atoms},
                               {atom[1] for atom, _ in others_atoms}, others_atoms[0][0][2],
                               lambda spec, key: (spec.name, key) in others
                               and others[(spec.name, key)].value > 0,
                               window, tables)
    for index, atom in enumerate(unknowns):
        for spec in tables:
            key = spec.key_of(atom, window)
            if key is not None:
                others[(spec.name, key)].members.append(index)
    _audit(others, len(unknowns), hidden, k)


SEXES = ("F", "M")
AGE_BANDS = ("0-4", "5-14", "15-24", "25-49", "50-64", "65+")


def candidate_atoms(places: Iterable[tuple[str, str]], specialties: Iterable[str], measure: str,
                    present: Any, window: frozenset[str],
                    tables: Sequence[TableSpec] = TABLES) -> list[tuple[Any, ...]]:
    """Every atom an attacker cannot rule out: a commune and quarter known to have lines, any
    specialty, sex and age band, unless one of the tables shows its cell as zero."""
    found = []
    for commune, quarter in sorted(places):
        for specialty in sorted(specialties):
            for sex in SEXES:
                for band in AGE_BANDS:
                    atom = (commune, specialty, measure, sex, band, quarter)
                    keys = [(spec, spec.key_of(atom, window)) for spec in tables]
                    if all(key is None or present(spec, key) for spec, key in keys):
                        found.append(atom)
    return found


def _audit(cells: dict[tuple[str, Key], _Cell], atom_count: int,
           hidden: dict[tuple[str, Key], str], k: int) -> None:
    """Hide more cells until the linear program over all published cells pins none below k.

    Hiding a cell removes a constraint, so a cell once protected stays protected: each round
    only re-checks the cells that failed and the ones just hidden.
    """
    by_atom: dict[int, list[tuple[str, Key]]] = defaultdict(list)
    by_table: dict[str, list[tuple[str, Key]]] = defaultdict(list)
    for ident, cell in cells.items():
        by_table[cell.table].append(ident)
        for member in cell.members:
            by_atom[member].append(ident)
    twins: dict[frozenset[int], list[tuple[str, Key]]] = defaultdict(list)
    for ident, cell in cells.items():
        if cell.members:  # a cell without unknowns is known already: nothing to protect
            twins[frozenset(cell.members)].append(ident)

    def hide(ident: tuple[str, Key], status: str) -> list[tuple[str, Key]]:
        # A cell of another table over the same unknowns is the same number: hide it alike.
        added = []
        for twin in twins.get(frozenset(cells[ident].members), ()):
            if twin not in hidden:
                hidden[twin] = status
                added.append(twin)
        return added

    pending = {ident for ident in hidden if cells[ident].members}
    for ident in list(pending):
        pending.update(hide(ident, hidden[ident]))
    while pending:
        published = [ident for ident in cells if ident not in hidden]
        system = _system(cells, published, atom_count)
        free = {atom for atom, owners in by_atom.items() if all(o in hidden for o in owners)}
        failing = []
        for ident in sorted(pending, key=_order):
            low, high = _range(cells[ident].members, system, atom_count, free)
            if high - low < k - _TOLERANCE:
                failing.append(ident)
        pending = set()
        for ident in failing:
            partner = _partner(cells[ident], cells, hidden, by_table, by_atom)
            if partner is None:
                continue  # every cell sharing its atoms is hidden: it cannot be pinned
            pending.add(ident)
            pending.update(hide(partner, suppression.COMPLEMENTARY))


def _order(ident: tuple[str, Key]) -> tuple[str, str]:
    return ident[0], json.dumps(ident[1], default=str)


def _system(cells: dict[tuple[str, Key], _Cell], published: list[tuple[str, Key]],
            atom_count: int) -> tuple[csr_matrix, np.ndarray] | None:
    from scipy.sparse import csr_matrix  # imported by the process that audits only (~30 MB)

    if not published:
        return None
    rows, columns = [], []
    for row, ident in enumerate(published):
        for member in cells[ident].members:
            rows.append(row)
            columns.append(member)
    matrix = csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(published), atom_count))
    return matrix, np.array([cells[ident].value for ident in published], dtype=float)


def _range(members: list[int], system: tuple[csr_matrix, np.ndarray] | None, atom_count: int,
           free: set[int]) -> tuple[float, float]:
    """The smallest and largest value the cell can take given the published cells."""
    if system is None:
        return 0.0, math.inf
    from scipy.optimize import linprog

    objective = np.zeros(atom_count)
    objective[members] = 1.0
    matrix, values = system
    low = linprog(objective, A_eq=matrix, b_eq=values, bounds=(0, None), method="highs")
    low_value = low.fun if low.status == 0 else 0.0
    if any(member in free for member in members):
        return low_value, math.inf
    high = linprog(-objective, A_eq=matrix, b_eq=values, bounds=(0, None), method="highs")
    if high.status == 3:  # unbounded
        return low_value, math.inf
    return low_value, -high.fun if high.status == 0 else math.inf


def _partner(cell: _Cell, cells: dict[tuple[str, Key], _Cell], hidden: dict,
             by_table: dict[str, list[tuple[str, Key]]],
             by_atom: dict[int, list[tuple[str, Key]]]) -> tuple[str, Key] | None:
    """The next published cell to hide: the nearest cell of the same table (fewest keys that
    differ, then the smallest), which shares the failing cell's margins; only when the table
    has none left, the smallest published cell sharing an unknown with it."""
    def distance(ident: tuple[str, Key]) -> int:
        return sum(a != b for a, b in zip(ident[1], cell.key, strict=True))

    same_table = [
        ident for ident in by_table[cell.table]
        if ident not in hidden and cells[ident].value > 0
    ]
    if same_table:
        return min(same_table, key=lambda c: (distance(c), cells[c].value, _order(c)))
    sharing = {owner for member in cell.members for owner in by_atom[member]
               if owner not in hidden and cells[owner].value > 0}
    return min(sharing, key=lambda c: (cells[c].value, _order(c)), default=None)


# --- building and storing ------------------------------------------------------------------------


def _atoms() -> list[tuple[tuple[Any, ...], int]]:
    rows = summary_rows(SummaryQuery(by=list(ATOM_DIMENSIONS)))
    return [(tuple(row[d] for d in ATOM_DIMENSIONS), int(row["count"]))
            for row in rows if row["count"]]


def _own_atoms() -> dict[tuple[str, str], dict[int, list[tuple[tuple[Any, ...], int]]]]:
    """Each organization's atoms, by region and measure: what its planners see exactly (a
    caravan with two organizers is known to both)."""
    rows = summary_rows(SummaryQuery(by=[*ATOM_DIMENSIONS, "organization"]))
    found: dict[tuple[str, str], dict[int, list[tuple[tuple[Any, ...], int]]]] = defaultdict(
        lambda: defaultdict(list))
    for row in rows:
        if row["count"]:
            atom = tuple(row[d] for d in ATOM_DIMENSIONS)
            found[(atom[0][:2], atom[2])][row["organization"]].append((atom, int(row["count"])))
    return found


def build_release(today: dt.date | None = None, *, force: bool = False) -> Release | None:
    """Build and store a new release when the counted lines changed; flush, don't commit."""
    started = time.perf_counter()
    today = today or dt.date.today()
    k = suppression.suppression_k()
    quarters = window_quarters(today)
    window = frozenset(quarters)
    atoms = _atoms()
    digest = hashlib.sha256(
        json.dumps([k, quarters, atoms], default=str, sort_keys=True).encode()
    ).hexdigest()
    current = db.session.scalars(select(Release).order_by(Release.id.desc()).limit(1)).first()
    if current is not None and current.data_digest == digest and not force:
        return None
    groups: dict[tuple[str, str], list[tuple[tuple[Any, ...], int]]] = defaultdict(list)
    for atom, value in atoms:
        groups[(atom[0][:2], atom[2])].append((atom, value))
    insiders = _own_atoms()
    tables: dict[str, list[list[Any]]] = {spec.name: [] for spec in TABLES}
    cell_count = hidden_count = 0
    for (region, measure), group in sorted(groups.items()):
        cells, hidden = protect_group(group, k, window, insiders=insiders.get((region, measure)))
        for ident, cell in sorted(cells.items(), key=lambda item: _order(item[0])):
            status = hidden.get(ident)
            if status is not None:
                status = suppression.PRIMARY if 0 < cell.value < k else suppression.COMPLEMENTARY
            tables[cell.table].append(
                [*cell.key, measure, None if status else cell.value, status])
            cell_count += 1
            hidden_count += status is not None
    start, _ = quarter_bounds(quarters[0])
    _, end = quarter_bounds(quarters[-1])
    release = Release(data_digest=digest, k=k, window_start=start, window_end=end,
                      cell_count=cell_count, hidden_count=hidden_count,
                      build_seconds=round(time.perf_counter() - started, 3), tables=tables)
    db.session.add(release)
    db.session.flush()
    return release


# --- reading -------------------------------------------------------------------------------------


@dataclass
class LoadedRelease:
    """A release indexed for selection: table → list of (key, measure, count, status)."""

    id: int
    built_at: dt.datetime
    k: int
    window_start: dt.date
    window_end: dt.date
    tables: dict[str, list[tuple[Key, str, int | None, str | None]]]

    def info(self) -> dict[str, Any]:
        built = self.built_at
        if built.tzinfo is None:
            built = built.replace(tzinfo=dt.UTC)
        return {"version": self.id, "built_at": built.isoformat(timespec="seconds"),
                "k": self.k, "window": {"from": self.window_start.isoformat(),
                                        "to": self.window_end.isoformat()}}

    def cells(self, spec: TableSpec) -> list[tuple[Key, str, int | None, str | None]]:
        return self.tables.get(spec.name, [])


_cache: dict[tuple[str, int], LoadedRelease] = {}
_cache_lock = threading.Lock()


def current_release() -> LoadedRelease:
    """The newest release, parsed once per process (an empty one before the first build)."""
    newest = db.session.execute(
        select(Release.id, Release.data_digest, Release.built_at)
        .order_by(Release.id.desc()).limit(1)
    ).first()
    if newest is None:
        # Nothing released yet (a new install before its first build): an empty release, the
        # same answer whatever is stored, never an error.
        quarters = window_quarters(dt.date.today())
        return LoadedRelease(0, dt.datetime.now(dt.UTC), suppression.suppression_k(),
                             quarter_bounds(quarters[0])[0], quarter_bounds(quarters[-1])[1], {})
    row = newest.id
    # Keyed by content as well as id: two databases (tests, a restored backup) may share ids.
    cache_key = (str(db.engine.url), row, newest.data_digest, str(newest.built_at))
    with _cache_lock:
        loaded = _cache.get(cache_key)
    if loaded is not None:
        return loaded
    release = db.session.get(Release, row)
    assert release is not None
    tables: dict[str, list[tuple[Key, str, int | None, str | None]]] = {}
    for name, cells in release.tables.items():
        width = len(TABLES_BY_NAME[name].dims) if name in TABLES_BY_NAME else len(cells[0]) - 3
        tables[name] = [(tuple(cell[:width]), cell[width], cell[width + 1], cell[width + 2])
                        for cell in cells]
    loaded = LoadedRelease(release.id, release.built_at, release.k, release.window_start,
                           release.window_end, tables)
    with _cache_lock:
        if len(_cache) > 8:
            _cache.clear()
        _cache[cache_key] = loaded
    return loaded


# --- refreshing off the request path --------------------------------------------------------------


def refresh(today: dt.date | None = None) -> Release | None:
    """Build a new release if the data changed, and commit it (a command or the background job)."""
    release = build_release(today)
    db.session.commit()
    return release


def start_background_refresh(app: Flask) -> threading.Thread | None:
    """Rebuild the release every RELEASE_REFRESH_SECONDS in a daemon thread (served processes);
    a failed refresh keeps serving the last release."""
    return background.repeat(app, "RELEASE_REFRESH_SECONDS", 300, refresh, name="release-refresh",
                             on_failure="release refresh failed; serving the previous release")


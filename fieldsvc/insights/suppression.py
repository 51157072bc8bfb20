"""Small-cell suppression: who sees full detail, what they may ask, and which cells to hide.

One module for every place a planner or an anonymous caller sees counts or rates (summary, needs,
plans, the dashboard, suppressed exports). The privacy rules are the contract:

* **Primary suppression**: a cell from 1 to k-1 (``SUPPRESSION_K``, 5) is hidden. Zero is a real
  value and is shown.
* **Complementary suppression**: more cells are hidden so that, given every published cell, the
  absent combinations (known zeros) and the response's ``total``, each hidden cell could still take
  a range of values at least k wide that is not inside [1, k-1]. The tests check this with a
  linear-programming oracle (``scipy.optimize.linprog``).

  How: each primary cell is protected by a *hypercube* of hidden cells — the cell, one other value
  on every dimension of the table, and all 2**d corners. Moving +δ on the corners of even parity and
  -δ on the odd ones changes no row, column or layer margin of the table (any sum over one or more
  dimensions), so even a caller who also fetched every coarser margin (``by=province`` next to
  ``by=province,specialty``) cannot narrow it: the cell keeps a range of width
  min(even corners) + min(odd corners), which the search makes at least k. Among the valid cubes
  the one hiding the least new information (fewest, smallest cells; cells already hidden are free)
  wins. Cubes need all their corners present; in a sparse table where none exists, the cell falls
  back to line protection: every row, column or layer through a hidden cell whose sum a coarser
  query would show (>= k) keeps at least two hidden cells adding up to k or more (so one coarser
  query cannot difference it out), and the hidden cells together add up to at least k given the
  total (the model: published cells and total, which the LP oracle test checks). The
  total itself is hidden when it is 1..k-1.

* **Callers without full detail** never get a table suppressed for their request: they select
  cells of the protected release (``release.py``), whose tables are protected together.
* **Rates** whose numerator (when not zero) or denominator is below k are ``null`` and marked
  ``"suppressed": "primary"``; see :func:`suppress_rate`.
* **Full detail**: admins; coordinators when the query's filters stay inside their regions;
  planners when they stay inside caravans their organization organized. Decided from the query
  alone, never from the data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app

Key = tuple[Hashable, ...]

PRIMARY = "primary"
COMPLEMENTARY = "complementary"

# Candidate values tried per dimension when searching a protecting hypercube.
_CANDIDATES_PER_DIMENSION = {1: 16, 2: 6, 3: 3}


def suppression_k() -> int:
    """The threshold k from the configuration (SUPPRESSION_K, 5 by default)."""
    try:
        return int(current_app.config.get("SUPPRESSION_K", 5))
    except RuntimeError:  # outside an application context (pure tests)
        return 5


# --- the table algorithm ----------------------------------------------------------------------


@dataclass
class Suppression:
    """Which cells of a table to hide; ``cells`` may name zero cells absent from the input."""

    cells: dict[Key, str]
    total: str | None  # PRIMARY when the table's total itself is 1..k-1

    def status(self, key: Key) -> str | None:
        return self.cells.get(key)


def suppress_table(values: Mapping[Key, int], k: int,
                   parents: Mapping[int, Callable[[Any], Hashable]] | None = None) -> Suppression:
    """Decide primary and complementary suppression for a table of non-negative counts.

    ``values`` maps each present cell (a tuple with one value per dimension) to its count;
    combinations not in it are zeros the caller can see are absent. ``parents`` maps a
    dimension (by position) whose values nest in a coarser one (a province in its region, a month
    in its quarter) to the function giving that coarser value: a cube then pairs values with the
    same parent only, and line protection covers those groups too, so that the coarser query
    (``by=region`` beside ``by=province``) cannot difference a hidden cell out.
    """
    parents = parents or {}
    values = {key: int(value) for key, value in values.items()}
    total = sum(values.values())
    total_status = PRIMARY if 0 < total < k else None
    hidden: dict[Key, str] = {key: PRIMARY for key, v in values.items() if 0 < v < k}
    if not hidden or total_status is not None:
        # A small total: every non-zero cell is small too and already hidden.
        return Suppression(hidden, total_status)
    dims = len(next(iter(values)))
    varying = [j for j in range(dims) if len({key[j] for key in values}) > 1]
    if not varying:
        return Suppression(hidden, total_status)
    lines: dict[tuple[int, Key], list[Key]] = {}
    for key in values:
        for j in varying:
            lines.setdefault((j, key[:j] + key[j + 1:]), []).append(key)
            if j in parents:
                lines.setdefault((j, key[:j] + key[j + 1:], parents[j](key[j])),
                                 []).append(key)
    for members in lines.values():
        members.sort(key=lambda m: values[m])  # smallest first: the cheapest partners
    protected: set[Key] = set()
    for cell in sorted(hidden, key=lambda c: (values[c], _sort_key(c))):
        if cell in protected:
            continue
        cube = _best_cube(cell, values, hidden, lines, varying, k, parents)
        if cube is None:
            continue
        for corner in cube:
            if corner not in hidden:
                hidden[corner] = COMPLEMENTARY
        protected.update(cube)
    _protect_lines(values, hidden, protected, lines, varying, k, parents)
    _protect_against_total(values, hidden, protected, k)
    return Suppression(hidden, total_status)


def _sort_key(value: Any) -> tuple:
    if isinstance(value, tuple):
        return tuple(_sort_key(v) for v in value)
    return (value is None, str(type(value)), value if value is not None else 0)


def _best_cube(cell: Key, values: Mapping[Key, int], hidden: Mapping[Key, str],
               lines: Mapping[tuple, list[Key]], varying: Sequence[int],
               k: int, parents: Mapping[int, Callable[[Any], Hashable]] | None = None,
               ) -> list[Key] | None:
    """The cheapest hypercube through ``cell`` whose corners all keep a range >= k wide."""
    limit = _CANDIDATES_PER_DIMENSION.get(len(varying), 4)
    choices: list[list[Hashable]] = []
    for j in varying:
        options = []
        # Lines are sorted by value: the first few non-zero neighbours are the cheapest partners.
        for position, neighbour in enumerate(lines[(j, cell[:j] + cell[j + 1:])]):
            other = neighbour[j]
            value = values[neighbour]
            if other == cell[j] or value == 0:
                continue  # an odd corner of 0 cannot move; an even one adds nothing
            if parents and j in parents and parents[j](other) != parents[j](cell[j]):
                continue  # moving across parents would change a coarser query's figures
            options.append(((0 if neighbour in hidden else 1, value), position, other))
            if len(options) >= 2 * limit:
                break
        if not options:
            return None
        options.sort(key=lambda item: (item[0], item[1]))
        choices.append([other for _, _, other in options[:limit]])
    flip_patterns = [
        (flips, sum(flips) % 2) for flips in itertools.product((False, True), repeat=len(varying))
    ]
    best: tuple[tuple[float, int], list[Key]] | None = None
    for alternatives in itertools.product(*choices):
        corners: list[Key] = []
        even_min = odd_min = None
        cost = 0.0
        added = 0
        ok = True
        for flips, parity in flip_patterns:
            corner = list(cell)
            for flip, j, other in zip(flips, varying, alternatives, strict=True):
                if flip:
                    corner[j] = other
            key = tuple(corner)
            value = values.get(key)
            if value is None:
                ok = False  # an absent combination is a known zero: it cannot move
                break
            if parity:
                odd_min = value if odd_min is None else min(odd_min, value)
            else:
                even_min = value if even_min is None else min(even_min, value)
            corners.append(key)
            if key not in hidden:
                cost += value
                added += 1
                if best is not None and (cost, added) >= best[0]:
                    ok = False  # already dearer than the best cube found
                    break
        if not ok or even_min + odd_min < k:  # type: ignore[operator]
            continue
        best = ((cost, added), corners)
        if cost == 0:
            break  # hides nothing new: cannot do better
    return None if best is None else best[1]


def _protect_lines(values: Mapping[Key, int], hidden: dict[Key, str], protected: set[Key],
                   lines: Mapping[tuple, list[Key]], varying: Sequence[int],
                   k: int, parents: Mapping[int, Callable[[Any], Hashable]] | None = None,
                   ) -> None:
    """Cells no cube protects: in every row, column or layer through them whose sum a coarser
    query would show (>= k), keep at least two hidden cells adding up to k or more."""
    parents = parents or {}
    line_sums: dict[tuple, int] = {}
    pending = [c for c in hidden if c not in protected]
    checked: set[Key] = set()
    while pending:
        cell = pending.pop()
        if cell in checked:
            continue
        checked.add(cell)
        through: list[tuple] = []
        for j in varying:
            through.append((j, cell[:j] + cell[j + 1:]))
            if j in parents:
                through.append((j, cell[:j] + cell[j + 1:], parents[j](cell[j])))
        for line in through:
            members = lines[line]
            if line not in line_sums:
                line_sums[line] = sum(values[m] for m in members)
            if line_sums[line] < k:
                continue  # that margin is small and hidden wherever it is shown
            inside = [m for m in members if m in hidden]
            inside_sum = sum(values[m] for m in inside)
            if len(inside) >= 2 and inside_sum >= k:
                continue
            candidates = sorted(
                (m for m in members if m not in hidden and values[m] > 0),
                key=lambda m: (values[m], _sort_key(m)),
            )
            for candidate in candidates:
                hidden[candidate] = COMPLEMENTARY
                if candidate not in protected:
                    pending.append(candidate)
                inside.append(candidate)
                inside_sum += values[candidate]
                if len(inside) >= 2 and inside_sum >= k:
                    break


def _protect_against_total(values: Mapping[Key, int], hidden: dict[Key, str],
                           protected: set[Key], k: int) -> None:
    """Cells no cube protects: hide more until the hidden cells sum to >= k (given the total)."""
    if all(cell in protected for cell in hidden):
        return
    hidden_sum = sum(values[c] for c in hidden)
    count = len(hidden)
    if count >= 2 and hidden_sum >= k:
        return
    published = sorted(
        (c for c, v in values.items() if c not in hidden and v > 0),
        key=lambda c: (values[c], _sort_key(c)),
    )
    for cell in published:  # if they run out, the caller hides the total too
        hidden[cell] = COMPLEMENTARY
        hidden_sum += values[cell]
        count += 1
        if count >= 2 and hidden_sum >= k:
            return


def unprotectable(values: Mapping[Key, int], suppression: Suppression, k: int) -> bool:
    """Whether the hidden cells could be worked out from the total (then hide the total too)."""
    if suppression.total is not None or not suppression.cells:
        return False
    hidden_sum = sum(values.get(c, 0) for c in suppression.cells)
    return len(suppression.cells) < 2 or hidden_sum < k


def _quarter_of_month(month: Any) -> Hashable:
    text = str(month or "")
    return text[:4] + "-Q" + str((int(text[5:7]) - 1) // 3 + 1) if len(text) >= 7 else text


# Dimensions whose values nest in a coarser dimension's, and how to find that coarser value.
PARENTS: dict[str, Callable[[Any], Hashable]] = {
    "province": lambda code: str(code or "")[:2],
    "commune": lambda code: str(code or "")[:6],
    "month": _quarter_of_month,
    "quarter": lambda quarter: str(quarter or "")[:4],
}


# --- applying it to summary rows --------------------------------------------------------------


def suppress_rows(rows: list[dict[str, Any]], dimensions: Sequence[str],
                  k: int | None = None) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """Hide cells of summary rows in place; return (rows, total or None, total's status)."""
    k = suppression_k() if k is None else k
    values = {tuple(row[d] for d in dimensions): int(row["count"]) for row in rows}
    total = sum(values.values())
    if not dimensions:
        status = PRIMARY if 0 < total < k else None
        for row in rows:
            if status:
                row["count"] = None
                row["suppressed"] = status
        return rows, None if status else total, status
    parents = {position: PARENTS[name] for position, name in enumerate(dimensions)
               if name in PARENTS}
    result = suppress_table(values, k, parents)
    total_status = result.total
    if unprotectable(values, result, k):
        total_status = COMPLEMENTARY
    for row in rows:
        status = result.status(tuple(row[d] for d in dimensions))
        if status is not None:
            row["count"] = None
            row["suppressed"] = status
    return rows, None if total_status else total, total_status


def suppress_rate(numerator: float | None, denominator: float | None,
                  k: int | None = None) -> tuple[bool, str | None]:
    """Whether a rate may be shown: its denominator and a non-zero numerator must reach k."""
    k = suppression_k() if k is None else k
    if denominator is None or numerator is None:
        return True, None
    if denominator < k or 0 < numerator < k:
        return False, PRIMARY
    return True, None


# --- who sees what ----------------------------------------------------------------------------


def full_detail(principal: Any, *, regions: Iterable[str] | None = None,
                caravan_ids: Iterable[int] | None = None,
                organization_id: int | None = None) -> bool:
    """Whether this caller sees unsuppressed counts for data restricted as described.

    ``regions``: the region codes the query is restricted to (None = not restricted);
    ``caravan_ids``: the caravans it is restricted to; ``organization_id``: an organization filter.
    """
    role = getattr(principal, "role", "anonymous")
    if role == "admin":
        return True
    if role == "coordinator":
        if regions is not None:
            wanted = set(regions)
            if wanted and wanted <= set(principal.region_codes):
                return True
        if caravan_ids is not None:
            ids = list(caravan_ids)
            if ids and all(principal.in_region(_caravan_region(c)) for c in ids):
                return True
        return False
    if role == "planner" and principal.organization_id is not None:
        if organization_id is not None and organization_id == principal.organization_id:
            return True
        if caravan_ids is not None:
            ids = list(caravan_ids)
            return bool(ids) and all(
                principal.organization_id in _caravan_organizations(c) for c in ids
            )
    return False


def _caravan_region(caravan_id: int) -> str | None:
    from fieldsvc.caravans.models import Caravan
    from fieldsvc.extensions import db

    caravan = db.session.get(Caravan, caravan_id)
    return None if caravan is None else caravan.region_code


def _caravan_organizations(caravan_id: int) -> set[int]:
    from fieldsvc.caravans.models import Caravan
    from fieldsvc.extensions import db

    caravan = db.session.get(Caravan, caravan_id)
    return set() if caravan is None else {o.id for o in caravan.organizers}

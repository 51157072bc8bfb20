"""The summary rollups: counted lines summed by commune × day × specialty × measure × sex × age band ×
condition × caravan (``tally_rollup``), by commune × month × specialty × measure × sex × age band
(``tally_rollup_month``, several times smaller) and by province × year × the same
(``tally_rollup_year``, smaller again), kept exact without touching the write path.

The invariant: each rollup is the sum, over every submission, of the lines of its
``rolled_version_id`` (0: none). A submission whose counted version differs from it (new,
amended, rejected or un-rejected since) is *unrolled* (``tallies.models.UNROLLED``, a partial
index). Readers (:func:`rollup_lines`) take, in one statement and so one snapshot, the rollup plus
the unrolled submissions' counted lines minus the lines the rollup holds for them: exact at any
moment, however far behind the fold is. The fold (:func:`fold`, a background thread of each
served process every ``ROLLUP_FOLD_SECONDS``, and ``flask rollup fold``) moves unrolled submissions
into the rollup; :func:`rebuild` recomputes it whole (after a bulk load).

Only the fold writes ``rolled_version_id`` and the rollup, one fold at a time (a PostgreSQL advisory
lock; SQLite's single writer), so the values it read stay true until it commits; a submission
amended while a fold runs is folded as its UPDATE finds it (RETURNING says which version).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, delete, insert, select, text, tuple_
from sqlalchemy.sql import Subquery

from fieldsvc import background
from fieldsvc.extensions import db
from fieldsvc.insights.models import RollupChange, TallyRollup, TallyRollupMonth, TallyRollupYear
from fieldsvc.tallies.models import UNROLLED

# What the rollups can answer; anything else (site, review status) is summed from the raw lines.
# Caravans and organizations (a caravan's organizers) from the day and month rollups.
ROLLUP_DIMENSIONS = frozenset({
    "region", "province", "commune", "specialty", "measure", "sex", "age_band", "condition",
    "day", "week", "month", "quarter", "year", "caravan", "organization",
})
MONTH_DIMENSIONS = ROLLUP_DIMENSIONS - {"condition", "day", "week"}
YEAR_DIMENSIONS = MONTH_DIMENSIONS - {"commune", "month", "quarter", "caravan", "organization"}
# The slice a fold rewrites is the first three; caravan last, so that the month key is [:6].
KEY_COLUMNS = ("commune_code", "day", "specialty_code", "measure_code", "sex", "age_band",
               "condition", "caravan_id")
MONTH_KEY_COLUMNS = (*KEY_COLUMNS[:6], "caravan_id")
YEAR_KEY_COLUMNS = ("province_code", *KEY_COLUMNS[1:6])
VALUE_COLUMNS = ("count", "line_count")
COUNTED_VERSION = ("CASE WHEN review_status = 'rejected' THEN 0 "
                   "ELSE coalesce(current_version_id, 0) END")
_LOCK_KEY = 1515  # pg_advisory_xact_lock: one fold or rebuild at a time
BATCH = 2000

# The lines of a set of versions, by rollup key; {versions} is a subquery `changed`
# (version_id, sign).
_LINES_OF = """
SELECT coalesce(site.commune_code, caravan.commune_code) AS commune_code, sv.day AS day,
       sv.specialty_code AS specialty_code, tl.measure_code AS measure_code, tl.sex AS sex,
       tl.age_band AS age_band, {condition}{count} AS count, {lines} AS line_count
FROM {versions}
JOIN submission_version sv ON sv.id = changed.version_id
JOIN tally_line tl ON tl.version_id = sv.id
JOIN caravan ON caravan.id = sv.caravan_id
LEFT JOIN site ON site.id = sv.site_id
"""
_DAY_KEYS = "tl.condition AS condition, sv.caravan_id AS caravan_id, "  # beyond the month's keys
_UNROLLED_VERSIONS = (
    f"(SELECT {COUNTED_VERSION} AS version_id, 1 AS sign FROM submission WHERE {UNROLLED} "
    f"UNION ALL SELECT rolled_version_id AS version_id, -1 AS sign FROM submission "
    f"WHERE {UNROLLED}) AS changed")


def _typed(table: Any, keys: tuple[str, ...]) -> list[Any]:
    return [table.__table__.c[name] for name in (*keys, *VALUE_COLUMNS)]


_TYPED = _typed(TallyRollup, KEY_COLUMNS)
# Day grain: the rollup, plus the unrolled submissions' lines (+) minus what it holds (-).
_SOURCE = text(
    f"SELECT {', '.join((*KEY_COLUMNS, *VALUE_COLUMNS))} FROM tally_rollup UNION ALL "
    + _LINES_OF.format(condition=_DAY_KEYS, count="tl.count * changed.sign",
                       lines="changed.sign", versions=_UNROLLED_VERSIONS)
).columns(*_TYPED)
# Month grain: the corrections keep their real day (same month, quarter and year).
_MONTH_SOURCE = text(
    f"SELECT {', '.join((*MONTH_KEY_COLUMNS, *VALUE_COLUMNS))} FROM tally_rollup_month UNION ALL "
    + _LINES_OF.format(condition="sv.caravan_id AS caravan_id, ", count="tl.count * changed.sign",
                       lines="changed.sign", versions=_UNROLLED_VERSIONS)
).columns(*_typed(TallyRollupMonth, MONTH_KEY_COLUMNS))
# Year grain: a province's code where a commune's would be (its region and province prefixes are
# the same); the corrections keep their commune and day. Read by region, province or year only.
_YEAR_SOURCE = text(
    f"SELECT province_code AS commune_code, {', '.join((*YEAR_KEY_COLUMNS[1:], *VALUE_COLUMNS))} "
    "FROM tally_rollup_year UNION ALL "
    + _LINES_OF.format(condition="", count="tl.count * changed.sign", lines="changed.sign",
                       versions=_UNROLLED_VERSIONS)
).columns(*_typed(TallyRollupMonth, KEY_COLUMNS[:6]))


def rollup_lines(query: Any) -> Subquery | None:
    """The counted lines as a rollup answers them for `query` (a SummaryQuery), exactly: rollup +
    unrolled corrections; None when no rollup has its dimensions and filters.

    Columns: ``commune_code, day, specialty_code, measure_code, sex, age_band``, ``condition``
    (day grain only), ``caravan_id`` (day and month grains), ``count, line_count``. Several rows
    may share a key: sum them, and keep only the groups whose ``line_count`` adds up to more than
    zero (those are the groups the raw lines have, zero counts included). At month grain ``day``
    is the month's first day (the corrections' a real day): read it by month, quarter or year
    only; at year grain the year's first day, and ``commune_code`` a province's code (the
    corrections' a commune's): read it by region, province and year only.
    """
    if not answers(query.by, statuses=bool(query.statuses)):
        return None
    whole_months = (query.start is None or query.start.day == 1) and (
        query.end is None or (query.end + dt.timedelta(days=1)).day == 1)
    whole_years = (query.start is None or query.start.strftime("%m%d") == "0101") and (
        query.end is None or query.end.strftime("%m%d") == "1231")
    if (set(query.by) <= YEAR_DIMENSIONS and whole_years
            and not (query.communes or query.caravans or query.organizations)):
        return _YEAR_SOURCE.subquery("rollup_lines")
    if set(query.by) <= MONTH_DIMENSIONS and whole_months:
        return _MONTH_SOURCE.subquery("rollup_lines")
    return day_lines()


def day_lines() -> Subquery:
    """The counted lines at day grain, exactly (rollup + corrections), as :func:`rollup_lines`."""
    return _SOURCE.subquery("rollup_lines")


def answers(by: list[str], *, statuses: bool) -> bool:
    """Whether a summary with these dimensions and filters can be read from the rollup."""
    return set(by) <= ROLLUP_DIMENSIONS and not statuses


def _lock() -> None:
    """Hold the fold lock until commit (SQLite: a first write takes the database's write lock)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    else:
        db.session.execute(delete(RollupChange))


def _month_key(key: tuple) -> tuple:
    return (key[0], key[1].replace(day=1), *key[2:6], key[7])


def _year_key(key: tuple) -> tuple:
    return (key[0][:6], key[1].replace(month=1, day=1), *key[2:6])


# The rollups summed from the day rollup's keys, in Python (the two databases spell "first of the
# month" differently): (model, key columns, day key -> its key).
_COARSER = ((TallyRollupMonth, MONTH_KEY_COLUMNS, _month_key),
            (TallyRollupYear, YEAR_KEY_COLUMNS, _year_key))


def fold_batch(limit: int = BATCH) -> int:
    """Fold up to `limit` unrolled submissions into the rollup and commit; how many were folded."""
    _lock()
    before = dict(db.session.execute(
        text(f"SELECT id, rolled_version_id FROM submission WHERE {UNROLLED} LIMIT :n"),
        {"n": limit}).all())
    if not before:
        db.session.commit()
        return 0
    # Record first, then sum what was recorded: an amendment committed in between is folded as
    # this UPDATE finds it.
    after = db.session.execute(
        text(f"UPDATE submission SET rolled_version_id = {COUNTED_VERSION} "
             "WHERE id IN :ids RETURNING id, rolled_version_id")
        .bindparams(bindparam("ids", expanding=True)), {"ids": list(before)}).all()
    changes = []
    for submission_id, version_id in after:
        old = before[submission_id]
        if version_id == old:
            continue
        if version_id:
            changes.append({"version_id": version_id, "sign": 1})
        if old:
            changes.append({"version_id": old, "sign": -1})
    if changes:
        # Core, not the ORM's bulk insert (which prepared each row in Python: 11.6 % of a
        # loaded worker's GIL samples under ingest, bench/README).
        db.session.execute(insert(RollupChange.__table__), changes)
        deltas = db.session.execute(text(
            _LINES_OF.format(condition=_DAY_KEYS,
                             count="sum(tl.count * changed.sign)", lines="sum(changed.sign)",
                             versions="rollup_change AS changed")
            + "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8").columns(*_TYPED)).all()
        _merge(TallyRollup, KEY_COLUMNS,
               [(tuple(row)[:len(KEY_COLUMNS)], row.count, row.line_count) for row in deltas])
        for model, keys, coarser in _COARSER:
            _merge(model, keys, [(coarser(tuple(row)), row.count, row.line_count)
                                 for row in deltas])
        db.session.execute(delete(RollupChange))
    db.session.commit()
    return len(before)


def _merge(model: Any, keys: tuple[str, ...], deltas: list[tuple[tuple, int, int]]) -> None:
    """Add signed sums (key, count, line_count) into a rollup: each touched commune × day ×
    specialty slice is rewritten with one row per key (keys left without lines dropped)."""
    by_slice: dict[tuple[Any, ...], dict[tuple[Any, ...], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0]))

    def add(key: tuple, count: int, lines: int) -> None:
        sums = by_slice[key[:3]][key]
        sums[0] += count
        sums[1] += lines

    for key, count, lines in deltas:
        if count or lines:
            add(key, count, lines)
    table = model.__table__
    typed = _typed(model, keys)
    slices = list(by_slice)
    for start in range(0, len(slices), 300):
        chunk = slices[start:start + 300]
        where = tuple_(table.c[keys[0]], table.c.day, table.c.specialty_code).in_(chunk)
        for row in db.session.execute(select(*typed).where(where)).all():
            add(tuple(row)[:len(keys)], row.count, row.line_count)
        db.session.execute(table.delete().where(where))
        rows = [dict(zip((*keys, *VALUE_COLUMNS), (*key, *sums), strict=True))
                for slice_key in chunk for key, sums in by_slice[slice_key].items() if sums[1]]
        if rows:
            db.session.execute(insert(table), rows)


def fold(limit: int | None = None) -> int:
    """Fold every unrolled submission (or up to `limit`), batch by batch; how many."""
    total = 0
    while limit is None or total < limit:
        done = fold_batch(BATCH if limit is None else min(BATCH, limit - total))
        total += done
        if not done:
            break
    return total


def rebuild() -> None:
    """Recompute the rollups whole from the counted lines (after a bulk load) and commit."""
    _lock()
    db.session.execute(text(f"UPDATE submission SET rolled_version_id = {COUNTED_VERSION} "
                            f"WHERE {UNROLLED}"))
    db.session.execute(delete(TallyRollup))
    for model, _, _ in _COARSER:
        db.session.execute(delete(model))
    db.session.execute(text(
        f"INSERT INTO tally_rollup ({', '.join(KEY_COLUMNS)}, count, line_count) "
        + _LINES_OF.format(condition=_DAY_KEYS, count="sum(tl.count)",
                           lines="count(*)",
                           versions="(SELECT rolled_version_id AS version_id FROM submission "
                                    "WHERE rolled_version_id <> 0) AS changed")
        + "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"))
    # The month and year rollups from the day rollup: the same lines, regrouped in Python,
    # streamed in slices.
    fine = TallyRollup.__table__
    sums: list[dict[tuple, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in _COARSER]
    for row in db.session.execute(select(*_TYPED).order_by(fine.c.id)).yield_per(50_000):
        for (_, _, coarser), table_sums in zip(_COARSER, sums, strict=True):
            value = table_sums[coarser(tuple(row))]
            value[0] += row.count
            value[1] += row.line_count
    for (model, keys, _), table_sums in zip(_COARSER, sums, strict=True):
        rows = [dict(zip((*keys, *VALUE_COLUMNS), (*key, *value), strict=True))
                for key, value in table_sums.items()]
        for start in range(0, len(rows), 20_000):
            db.session.execute(insert(model.__table__), rows[start:start + 20_000])
    db.session.commit()


def start_background_fold(app: Flask) -> threading.Thread | None:
    """Fold every ROLLUP_FOLD_SECONDS in a daemon thread (served processes); readers stay exact
    whatever the fold's delay, so a failed fold only makes summaries read more raw lines."""
    return background.repeat(app, "ROLLUP_FOLD_SECONDS", 10, fold, name="rollup-fold",
                             on_failure="rollup fold failed; summaries read more raw lines")

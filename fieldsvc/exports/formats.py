"""Writers for export files: XLSX (openpyxl write-only; XlsxWriter streamed) and GeoJSON."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import xlsxwriter
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from fieldsvc.areas.models import Area
from fieldsvc.extensions import db
from fieldsvc.insights.queries import AREA_DIMENSIONS

DATE_COLUMNS = ("day", "week")  # keyed by a whole date: stored as dates in a spreadsheet
MAX_WIDTH = 60


def _value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in DATE_COLUMNS and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if isinstance(value, str):  # a control character in a title would make the file unreadable
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, dt.date):
        return 10
    return len(str(value))


def xlsx_bytes(columns: list[str], rows: list[dict[str, Any]], about: list[tuple[str, Any]],
               title: str = "summary") -> bytes:
    """A workbook: a header row frozen above the rows, numbers and dates typed, fitted widths,
    and an "about" sheet saying what the file holds."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    widths = [len(column) for column in columns]
    typed = [[_value(column, row.get(column)) for column in columns] for row in rows]
    for values in typed:
        for index, value in enumerate(values):
            widths[index] = max(widths[index], _width(value))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(MAX_WIDTH, width + 2)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for values in typed:
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            cells.append(cell)
        sheet.append(cells)
    notes = workbook.create_sheet("about")
    notes.column_dimensions["A"].width = 24
    notes.column_dimensions["B"].width = min(MAX_WIDTH, max((_width(v) for _, v in about), default=10) + 2)
    for key, value in about:
        notes.append([key, value])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


XLSX_CHUNK = 64 * 1024


def xlsx_chunks(columns: list[str], rows: Iterable[dict[str, Any]], about: list[tuple[str, Any]],
                title: str = "summary") -> Iterator[bytes]:
    """The same workbook as :func:`xlsx_bytes`, from a stream of rows in constant memory.

    XlsxWriter's constant_memory mode writes each row to a temporary file as it comes (strings
    inline); the widths are set after the last row, since it writes the columns at close. The
    finished file is then read out in chunks.
    """
    with tempfile.TemporaryDirectory(prefix="fieldsvc-xlsx-") as folder:
        path = f"{folder}/export.xlsx"
        workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": folder,
                                              "remove_timezone": True})
        sheet = workbook.add_worksheet(title[:31])
        bold = workbook.add_format({"bold": True})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        widths = [len(column) for column in columns]
        sheet.write_row(0, 0, columns, bold)
        sheet.freeze_panes(1, 0)
        for number, row in enumerate(rows, start=1):
            for index, column in enumerate(columns):
                value = _value(column, row.get(column))
                widths[index] = max(widths[index], _width(value))
                _write(sheet, number, index, value, day, moment)
        for index, width in enumerate(widths):
            sheet.set_column(index, index, min(MAX_WIDTH, width + 2))
        notes = workbook.add_worksheet("about")
        notes.set_column(0, 0, 24)
        notes.set_column(1, 1, min(MAX_WIDTH, max((_width(v) for _, v in about), default=10) + 2))
        for number, (key, value) in enumerate(about):
            notes.write_string(number, 0, key)
            _write(notes, number, 1, value, day, moment)
        workbook.close()
        with open(path, "rb") as file:
            while block := file.read(XLSX_CHUNK):
                yield block


def _write(sheet: Any, row: int, column: int, value: Any, day: Any, moment: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(row, column, value, moment)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, column, value, day)
    elif isinstance(value, int | float):
        sheet.write_number(row, column, value)
    else:
        sheet.write_string(row, column, str(value))


JSON_BATCH = 500


def summary_json_chunks(meta: dict[str, Any], rows: Iterable[dict[str, Any]],
                        dumps: Callable[[Any], str]) -> Iterator[str]:
    """The summary API's JSON document, written as its rows come: the same text ``dumps``
    (sorted keys) gives for ``meta`` with ``rows`` and ``total`` added; ``rows`` sorts before
    ``total``, so the total is summed on the way."""
    keys = sorted({*meta, "rows", "total"})
    assert keys.index("rows") < keys.index("total")
    total = 0
    parts = ["{"]
    for position, key in enumerate(keys):
        parts.append(("" if position == 0 else ", ") + dumps(key) + ": ")
        if key == "rows":
            parts.append("[")
            for index, row in enumerate(rows):
                total += row["count"]
                parts.append((", " if index else "") + dumps(row))
                if len(parts) >= JSON_BATCH:
                    yield "".join(parts)
                    parts = []
            parts.append("]")
        elif key == "total":
            parts.append(dumps(total))
        else:
            parts.append(dumps(meta[key]))
    parts.append("}")
    yield "".join(parts)


def area_points(codes: Iterable[str]) -> dict[str, tuple[float | None, float | None, str | None]]:
    """Each area's point and where it came from (the areas domain's point, never invented)."""
    codes = list(set(codes))
    points: dict[str, tuple[float | None, float | None, str | None]] = {}
    for start in range(0, len(codes), 900):
        chunk = codes[start:start + 900]
        for code, lat, lon, source in db.session.execute(
            select(Area.code, Area.lat, Area.lon, Area.point_source).where(Area.code.in_(chunk))
        ):
            points[code] = (lat, lon, source)
    return points


def _feature(code: Any, level: str, row: dict[str, Any],
             point: tuple[float | None, float | None, str | None]) -> dict[str, Any]:
    lat, lon, source = point
    geometry = None if lat is None or lon is None else {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "id": code, "geometry": geometry,
            "properties": {"code": code, "level": level, "name_fr": row.get(f"{level}_name_fr"),
                           "name_ar": row.get(f"{level}_name_ar"), "point_source": source,
                           "figures": []}}


def _figure(row: dict[str, Any], others: list[str]) -> dict[str, Any]:
    return {key: value for key, value in row.items()
            if key in others or key == "count" or key == "suppressed"
            or any(key.startswith(f"{d}_") for d in others)}


def _finish(feature: dict[str, Any], others: list[str]) -> None:
    figures = feature["properties"]["figures"]
    if not others and len(figures) == 1:  # one figure per area: put it beside the name
        feature["properties"].update(figures[0])


def geojson(query_by: list[str], rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Areas as points with their figures: one feature per area, its rows in `figures`."""
    level = next(d for d in query_by if d in AREA_DIMENSIONS)
    others = [d for d in query_by if d != level]
    features: dict[str, dict[str, Any]] = {}
    points = area_points(row[level] for row in rows if row.get(level))
    for row in rows:
        code = row.get(level)
        feature = features.get(code)
        if feature is None:
            feature = features[code] = _feature(code, level, row,
                                                points.get(code, (None, None, None)))
        feature["properties"]["figures"].append(_figure(row, others))
    for feature in features.values():
        _finish(feature, others)
    return {"type": "FeatureCollection", "features": list(features.values()), "fieldsvc": meta}


FEATURE_BATCH = 200


def geojson_chunks(query_by: list[str], rows: Iterable[dict[str, Any]], meta: dict[str, Any],
                   dumps: Callable[[Any], str]) -> Iterator[str]:
    """The same collection as :func:`geojson`, written as the rows come.

    The rows must come grouped by the area level (ordered by it first): one feature is built
    at a time, and features leave in batches once their points are looked up. ``meta`` gets
    the ``total`` summed on the way (``fieldsvc`` sorts after ``features``).
    """
    level = next(d for d in query_by if d in AREA_DIMENSIONS)
    others = [d for d in query_by if d != level]
    total = 0
    written = 0
    pending: list[tuple[Any, dict[str, Any], list[dict[str, Any]]]] = []

    def flush() -> str:
        nonlocal written
        points = area_points(code for code, _, _ in pending if code)
        parts = []
        for code, first, figures in pending:
            feature = _feature(code, level, first, points.get(code, (None, None, None)))
            feature["properties"]["figures"] = figures
            _finish(feature, others)
            parts.append((", " if written else "") + dumps(feature))
            written += 1
        pending.clear()
        return "".join(parts)

    yield '{"features": ['
    current: tuple[Any, dict[str, Any], list[dict[str, Any]]] | None = None
    for row in rows:
        total += row["count"] or 0
        code = row.get(level)
        if current is None or code != current[0]:
            if current is not None:
                pending.append(current)
                if len(pending) >= FEATURE_BATCH:
                    yield flush()
            current = (code, row, [])
        current[2].append(_figure(row, others))
    if current is not None:
        pending.append(current)
    yield flush()
    yield '], "fieldsvc": ' + dumps({**meta, "total": total}) + ', "type": "FeatureCollection"}'

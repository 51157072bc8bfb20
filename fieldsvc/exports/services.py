"""Files built from the same services as the API: summaries, the detail of tally lines.

Counts for anyone without full detail come only from `insights.services.summary` (the protected
release); the streamed paths below run only after that service's own `has_full_detail` said yes.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request
from flask_babel import gettext as _
from sqlalchemy import func, null, select

from fieldsvc.accounts.services import audit
from fieldsvc.areas.models import Area
from fieldsvc.caravans.models import Caravan, Site
from fieldsvc.errors import Forbidden, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import services as insights
from fieldsvc.insights.queries import AREA_DIMENSIONS, SummaryQuery, SummaryResult, ordered_summary_statement
from fieldsvc.security import Principal
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine

# Excel's sheet holds 1,048,576 rows, the header included.
XLSX_MAX_ROWS = 1_048_575
STREAM_BATCH = 2000
NAME_COLUMNS = {"site": ["site_name"], "caravan": ["caravan_title"],
                "organization": ["organization_name"]}


@dataclass
class SummaryExport:
    """A summary ready to write: its columns, its rows (a list, or a stream of rows), a name."""

    query: SummaryQuery
    columns: list[str]
    rows: Iterable[dict[str, Any]]
    row_count: int
    full_detail: bool
    filename: str
    result: SummaryResult | None = None  # absent on the streamed full-detail path
    copy_statement: Any = None  # on PostgreSQL, the rows as one SELECT for COPY … TO STDOUT


@dataclass
class DetailExport:
    columns: list[str]
    rows: Iterable[tuple[Any, ...]]
    row_count: int
    filename: str
    filters: dict[str, Any] = field(default_factory=dict)
    copy_statement: Any = None


def summary_columns(query: SummaryQuery) -> list[str]:
    """The columns of a summary file: each dimension (with its names), count, suppressed."""
    columns: list[str] = []
    for dimension in query.by:
        columns.append(dimension)
        if dimension in AREA_DIMENSIONS:
            columns += [f"{dimension}_name_fr", f"{dimension}_name_ar"]
        columns += NAME_COLUMNS.get(dimension, [])
    return [*columns, "count", "suppressed"]


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def _place(query: SummaryQuery) -> str:
    codes = query.communes or query.provinces or query.regions
    if not codes:
        return "maroc"
    names = dict(db.session.execute(select(Area.code, Area.name_fr).where(Area.code.in_(codes))).all())
    return "+".join(_slug(names.get(code, code)) for code in codes[:3]) + ("+" if len(codes) > 3 else "")


def _period(start: dt.date | None, end: dt.date | None) -> str:
    if start is None and end is None:
        return "all-time"
    return f"{start.isoformat() if start else 'start'}_{end.isoformat() if end else 'today'}"


def export_filename(kind: str, query: SummaryQuery, extension: str) -> str:
    """Say what the file holds: fieldsvc-summary_draa-tafilalet_2026-10-01_2026-12-31.csv."""
    return f"fieldsvc-{kind}_{_place(query)}_{_period(query.start, query.end)}.{extension}"


def audit_export(kind: str, fmt: str, rows: int, principal: Principal, **detail: Any) -> None:
    filters = {key: value for key, value in request.args.items()} if request else {}
    audit(f"export.{kind}", object_type="export", principal=principal, format=fmt,
          filters=filters, rows=rows, **detail)


def summary_export(query: SummaryQuery, principal: Principal, fmt: str, *,
                   stream: bool = False, first: str | None = None) -> SummaryExport:
    """A summary for a file: the summary service's answer, or its statement streamed.

    Without full detail the rows are the service's selection of the protected release, capped
    at SUPPRESSED_EXPORT_MAX_CELLS. With full detail and ``stream``, the same grouping statement
    is read in batches from a server-side cursor, in the order the API sorts its rows (with
    ``first``, ordered by that dimension first, the others after it in the API's order).
    """
    insights.check_codes(query)
    columns = summary_columns(query)
    extension = {"geojson": "geojson"}.get(fmt, fmt)
    filename = export_filename("summary", query, extension)
    if stream and insights.has_full_detail(principal, query):
        order = query if first is None else dataclasses.replace(
            query, by=[first, *[d for d in query.by if d != first]])
        statement = ordered_summary_statement(order)
        count = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
        if fmt == "xlsx" and count > XLSX_MAX_ROWS:
            raise _too_large(count, XLSX_MAX_ROWS)
        audit_export("summary", fmt, count, principal, full_detail=True,
                      region_code=one_region(query))
        copy_statement = None
        if _postgresql() and fmt == "csv":
            selected = statement.selected_columns
            copy_statement = statement.with_only_columns(
                *[selected[column] for column in columns[:-1]], null().label("suppressed"),
                maintain_column_froms=True)
        return SummaryExport(query=query, columns=columns, rows=_stream_mappings(statement),
                             row_count=count, full_detail=True, filename=filename,
                             copy_statement=copy_statement)
    result = insights.summary(query, principal)
    if not result.full_detail:
        cap = current_app.config["SUPPRESSED_EXPORT_MAX_CELLS"]
        if result.row_count > cap:
            raise _too_large(result.row_count, cap)
    elif fmt == "xlsx" and result.row_count > XLSX_MAX_ROWS:
        raise _too_large(result.row_count, XLSX_MAX_ROWS)
    audit_export("summary", fmt, result.row_count, principal, full_detail=result.full_detail,
                  region_code=one_region(query))
    return SummaryExport(query=query, columns=columns, rows=result.rows,
                         row_count=result.row_count, full_detail=result.full_detail,
                         filename=filename, result=result)


def one_region(query: SummaryQuery) -> str | None:
    """The region an export is filed under in the audit log, when it names one."""
    regions = {code[:2] for code in query.regions + query.provinces + query.communes}
    return regions.pop() if len(regions) == 1 else None


def _too_large(rows: int, cap: int) -> ValidationFailed:
    message = _("This export would hold %(rows)s cells, more than the %(cap)s allowed: ask for a "
                "coarser query (fewer dimensions in by, a shorter period or one region).",
                rows=rows, cap=cap)
    return ValidationFailed(message, errors={"by": [message]})


def _stream_mappings(statement: Any) -> Iterator[dict[str, Any]]:
    result = db.session.execute(statement.execution_options(yield_per=STREAM_BATCH))
    for row in result.mappings():
        item = dict(row)
        item["count"] = int(item["count"] or 0)
        yield item


# --- CSV -----------------------------------------------------------------------------------


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"

BOM = "\ufeff"


def _cell(value: Any) -> Any:
    return "" if value is None else value


def csv_chunks(columns: list[str], rows: Iterable[Any], *, mappings: bool = True) -> Iterator[str]:
    """RFC 4180 CSV (CRLF, quoted as needed) in chunks, UTF-8 BOM first so Excel reads Arabic."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(columns)
    written = 0
    for row in rows:
        if mappings:
            writer.writerow([_cell(row.get(column)) for column in columns])
        else:
            writer.writerow([_cell(value) for value in row])
        written += 1
        if written % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


COPY_CHUNK = 64 * 1024


def copy_chunks(columns: list[str], statement: Any) -> Iterator[bytes]:
    """The same CSV from PostgreSQL's own COPY … TO STDOUT (its fastest way out), CRLF ends.

    The statement is rendered with its values inline (COPY takes no parameters); they are codes,
    ids and dates that the schemas checked, escaped by SQLAlchemy's literal rendering.
    """
    # Named by its statement, the connection is the read replica's when the request reads there.
    connection = db.session.connection(bind_arguments={"clause": statement})
    sql = str(statement.compile(dialect=connection.dialect,
                                compile_kwargs={"literal_binds": True}))
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(columns)
    yield (BOM + header.getvalue()).encode("utf-8")
    driver = connection.connection.driver_connection
    # COPY sends one message per row: gather them into chunks of COPY_CHUNK bytes, so that the
    # server writes to the socket once per chunk rather than once per line.
    pending: list[bytes] = []
    size = 0
    with driver.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        for block in copy:
            pending.append(bytes(block))
            size += len(block)
            if size >= COPY_CHUNK:
                yield b"".join(pending).replace(b"\n", b"\r\n")
                pending, size = [], 0
    if pending:
        yield b"".join(pending).replace(b"\n", b"\r\n")


# --- the detail of tally lines ---------------------------------------------------------------

DETAIL_COLUMNS = ["caravan", "caravan_title", "site", "site_name", "commune", "commune_name_fr",
                  "commune_name_ar", "day", "specialty", "measure", "sex", "age_band", "condition",
                  "count", "review_status", "version", "submission"]


@dataclass
class DetailQuery:
    regions: list[str] = field(default_factory=list)
    caravans: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    start: dt.date | None = None
    end: dt.date | None = None


def _detail_regions(query: DetailQuery, principal: Principal) -> list[str] | None:
    """The regions the export covers (None: all, for admins); outside the caller's scope → 403."""
    if principal.role == "admin":
        return query.regions or None
    allowed = set(principal.region_codes)
    outside = [code for code in query.regions if code not in allowed]
    if outside:
        raise Forbidden(_("You coordinate %(mine)s, not %(asked)s.", mine=", ".join(sorted(allowed)),
                          asked=", ".join(outside)))
    return query.regions or sorted(allowed)


def detail_statement(query: DetailQuery, regions: list[str] | None) -> Any:
    """Every current tally line in scope with its caravan, site, commune, version and review."""
    site = Site.__table__.alias("line_site")
    caravan = Caravan.__table__.alias("line_caravan")
    commune = Area.__table__.alias("line_commune")
    commune_code = func.coalesce(site.c.commune_code, caravan.c.commune_code)
    day: Any = SubmissionVersion.day
    if _postgresql():  # COPY writes dates as DateStyle says: spell them out
        day = func.to_char(day, "YYYY-MM-DD")
    statement = (
        select(caravan.c.id, caravan.c.title, site.c.id, site.c.name, commune_code,
               commune.c.name_fr, commune.c.name_ar, day,
               SubmissionVersion.specialty_code, TallyLine.measure_code, TallyLine.sex,
               TallyLine.age_band, TallyLine.condition, TallyLine.count, Submission.review_status,
               SubmissionVersion.number, Submission.id)
        .select_from(TallyLine)
        .join(SubmissionVersion, SubmissionVersion.id == TallyLine.version_id)
        .join(Submission, Submission.current_version_id == SubmissionVersion.id)
        .join(caravan, caravan.c.id == SubmissionVersion.caravan_id)
        .outerjoin(site, site.c.id == SubmissionVersion.site_id)
        .outerjoin(commune, commune.c.code == commune_code)
    )
    if regions is not None:
        statement = statement.where(func.substr(commune_code, 1, 2).in_(regions))
    if query.caravans:
        statement = statement.where(caravan.c.id.in_(query.caravans))
    if query.statuses:
        statement = statement.where(Submission.review_status.in_(query.statuses))
    if query.start is not None:
        statement = statement.where(SubmissionVersion.day >= query.start)
    if query.end is not None:
        statement = statement.where(SubmissionVersion.day <= query.end)
    # No ORDER BY: sorting a season's lines costs more than reading them and holds back the
    # first row until the last is read; the file is opened in a spreadsheet that sorts.
    return statement


def detail_export(query: DetailQuery, principal: Principal) -> DetailExport:
    """Every tally line a coordinator may check, streamed from a server-side cursor; audited."""
    regions = _detail_regions(query, principal)
    statement = detail_statement(query, regions)
    count = db.session.scalar(
        select(func.count()).select_from(statement.subquery())) or 0
    audit_export("detail", "csv", count, principal,
                  region_code=regions[0] if regions and len(regions) == 1 else None)
    place = "+".join(regions) if regions else "maroc"
    filename = f"fieldsvc-lines_{place}_{_period(query.start, query.end)}.csv"

    def rows() -> Iterator[tuple[Any, ...]]:
        result = db.session.execute(statement.execution_options(yield_per=STREAM_BATCH))
        for row in result:
            yield tuple(value.isoformat() if isinstance(value, dt.date) else value for value in row)

    return DetailExport(columns=DETAIL_COLUMNS, rows=rows(), row_count=count, filename=filename,
                        copy_statement=statement if _postgresql() else None)

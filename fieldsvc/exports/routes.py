"""Exports API: summaries as CSV, XLSX, JSON and GeoJSON; the detail of tally lines.

Every export takes the summary's query parameters and calls the same service as the API;
each is audited (who, which filters, how many rows) before its first byte is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, json, stream_with_context
from flask_babel import gettext as _
from flask_smorest import Blueprint

from fieldsvc.errors import ValidationFailed
from fieldsvc.exports import dhis2, formats, reports, services
from fieldsvc.exports.schemas import DetailArgs, Dhis2Args, Dhis2Request, LangArgs, ReportArgs, SummaryArgs
from fieldsvc.exports.services import DetailQuery, SummaryExport
from fieldsvc.extensions import db
from fieldsvc.insights.queries import AREA_DIMENSIONS, SummaryQuery, SummaryResult
from fieldsvc.insights.schemas import SummaryResultSchema
from fieldsvc.replica import replica_reads
from fieldsvc.security import allow, current_principal

blp = Blueprint("exports", __name__, url_prefix="/api/v1",
                description="Files for coordinators, partners and the health ministry",
                template_folder="templates")

STAFF = ("admin", "coordinator", "planner")
F = TypeVar("F", bound=Callable[..., Any])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXAMPLE_CSV = ("\ufeffprovince,province_name_fr,province_name_ar,specialty,count,suppressed\r\n"
               "08.587,Zagora,زاكورة,OPH,734,\r\n08.587,Zagora,زاكورة,PED,,primary\r\n")
EXAMPLE_GEOJSON = {
    "type": "FeatureCollection",
    "features": [{"type": "Feature", "id": "08.587",
                  "geometry": {"type": "Point", "coordinates": [-5.84, 30.33]},
                  "properties": {"code": "08.587", "level": "province", "name_fr": "Zagora",
                                 "name_ar": "زاكورة", "point_source": "geonames",
                                 "figures": [{"specialty": "OPH", "count": 734}]}}],
    "fieldsvc": {"by": ["province", "specialty"], "measure": ["consultations"],
                 "from": "2026-10-01", "to": "2026-12-31", "full_detail": True},
}


def _attachment(body: Any, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _streamed(chunks: Any, mimetype: str, filename: str) -> Response:
    # The audit record is committed before the first byte: a cut download is still recorded.
    db.session.commit()
    response = _attachment(stream_with_context(chunks), mimetype, filename)
    response.headers["X-Accel-Buffering"] = "no"  # let a proxy pass rows on as they come
    return response


def _about(export: SummaryExport) -> list[tuple[str, Any]]:
    query = export.query
    about: list[tuple[str, Any]] = [
        ("by", ",".join(query.by)),
        ("measure", ",".join(query.effective_measures()) or "(by measure)"),
        ("from", query.start), ("to", query.end),
        ("region", ",".join(query.regions)), ("province", ",".join(query.provinces)),
        ("commune", ",".join(query.communes)),
        ("full_detail", export.full_detail),
        ("rows", export.row_count),
        ("exported_at", dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)),
    ]
    result = export.result
    if result is not None and result.release is not None:
        about += [("release", result.release.version),
                  ("release_built_at", result.release.built_at.replace(tzinfo=None)),
                  ("suppression_k", result.release.k),
                  ("suppressed", "count empty; suppressed = primary or complementary")]
    return about


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _stream_meta(export: SummaryExport) -> dict[str, Any]:
    """What the summary API says around its rows, for a streamed full-detail export."""
    query = export.query
    meta = SummaryResultSchema().dump(SummaryResult(
        query=query, measures=query.effective_measures() or None, full_detail=True, rows=[],
        total=None))
    meta.pop("rows", None)
    meta.pop("total", None)
    meta["row_count"] = export.row_count
    return meta


def _export(rule: str, schema: Any, content_type: str, description: str, example: Any,
            roles: tuple[str, ...] = STAFF, name: str | None = None,
            doc: str | None = None) -> Callable[[F], F]:
    """Register a GET export: who may call it, its query arguments, the file it answers (for the
    OpenAPI document) and reads from the replica. ``name`` and ``doc`` name a view made in a loop."""

    def register(view: F) -> F:
        if name is not None:
            view.__name__ = view.__qualname__ = name
        if doc is not None:
            view.__doc__ = doc
        for decorate in (replica_reads,
                         blp.response(200, content_type=content_type, example=example,
                                      description=description),
                         blp.arguments(schema, location="query"),
                         allow(*roles),
                         blp.route(rule, methods=["GET"])):
            view = decorate(view)
        return view

    return register


def _csv_chunks(export: Any, mappings: bool = True) -> Any:
    if export.copy_statement is not None:
        return services.copy_chunks(export.columns, export.copy_statement)
    return services.csv_chunks(export.columns, export.rows, mappings=mappings)


@_export("/exports/summary.csv", SummaryArgs, "text/csv", example=EXAMPLE_CSV,
         description="UTF-8 CSV with a BOM (RFC 4180); a suppressed cell has an empty count "
                     "and suppressed = primary or complementary")
def summary_csv(query: SummaryQuery):
    """Export a summary as CSV (streamed from the database with full detail)."""
    export = services.summary_export(query, current_principal(), "csv", stream=True)
    return _streamed(_csv_chunks(export), "text/csv", export.filename)


@_export("/exports/summary.xlsx", SummaryArgs, XLSX, example="(XLSX bytes)",
         description="A workbook: the rows under a frozen header, and an about sheet")
def summary_xlsx(query: SummaryQuery):
    """Export a summary as an Excel workbook (numbers as numbers, days as dates)."""
    export = services.summary_export(query, current_principal(), "xlsx", stream=True)
    if export.result is None:  # full detail: rows from the cursor, the file built as they come
        return _streamed(formats.xlsx_chunks(export.columns, export.rows, _about(export)),
                         XLSX, export.filename)
    body = formats.xlsx_bytes(export.columns, list(export.rows), _about(export))
    db.session.commit()
    return _attachment(body, XLSX, export.filename)


@_export("/exports/summary.json", SummaryArgs, "application/json",
         example={"rows": [], "row_count": 0},
         description="Exactly what GET /api/v1/summary answers, as a file")
def summary_json(query: SummaryQuery):
    """Export a summary as the summary API's JSON, as a file."""
    export = services.summary_export(query, current_principal(), "json", stream=True)
    if export.result is None:  # full detail: the document written as the cursor's rows come
        return _streamed(formats.summary_json_chunks(_stream_meta(export), export.rows, _dumps),
                         "application/json", export.filename)
    body = _dumps(SummaryResultSchema().dump(export.result))
    db.session.commit()
    return _attachment(body, "application/json", export.filename)


@_export("/exports/summary.geojson", SummaryArgs, "application/geo+json", example=EXAMPLE_GEOJSON,
         description="Areas as points with their figures (by must name an area level)")
def summary_geojson(query: SummaryQuery):
    """Export a summary as GeoJSON: each area a point carrying its figures."""
    if not any(dimension in AREA_DIMENSIONS for dimension in query.by):
        message = _("A map needs an area level in by: add region, province or commune.")
        raise ValidationFailed(message, errors={"by": [message]})
    level = next(dimension for dimension in query.by if dimension in AREA_DIMENSIONS)
    export = services.summary_export(query, current_principal(), "geojson", stream=True,
                                     first=level)
    if export.result is None:  # full detail: one area at a time, as the cursor's rows come
        return _streamed(formats.geojson_chunks(query.by, export.rows, _stream_meta(export),
                                                _dumps), "application/geo+json", export.filename)
    meta = SummaryResultSchema().dump(export.result)
    meta.pop("rows", None)
    body = _dumps(formats.geojson(query.by, list(export.rows), meta))
    db.session.commit()
    return _attachment(body, "application/geo+json", export.filename)


@_export("/exports/detail.csv", DetailArgs, "text/csv", roles=("admin", "coordinator"),
         example="\ufeffcaravan,caravan_title,site,site_name,commune,commune_name_fr,"
                 "commune_name_ar,day,specialty,measure,sex,age_band,condition,count,"
                 "review_status,version,submission\r\n"
                 "12,Caravane de Zagora,31,École Al Amal,08.587.01.13,Zagora,زاكورة,"
                 "2026-11-28,OPH,consultations,F,50-64,,12,approved,1,"
                 "5d1e8a47-2b9c-4f60-8e3a-c7b2d9f01a64\r\n",
         description="Every tally line (current versions) in the coordinator's regions")
def detail_csv(query: DetailQuery):
    """Export every tally line in your regions for a period, to check a season in Excel."""
    export = services.detail_export(query, current_principal())
    return _streamed(_csv_chunks(export, mappings=False), "text/csv", export.filename)


EXAMPLE_DATA_VALUE_SET = {"dataSet": "FIELDSVC_CARAVANS", "dataValues": [
    {"dataElement": "FS_CONSULTATIONS", "period": "202611", "orgUnit": "08.587.01.13",
     "categoryOptionCombo": "OPH_F_50-64", "value": "12"}]}


@dataclass(frozen=True)
class Dhis2Format:
    """One file made from a DHIS2 summary: where it is served and how it is written."""

    name: str  # the view's name, as url_for knows it
    rule: str
    kind: str  # what the audit record says
    content_type: str
    render: Callable[[Any], Any]
    stem: str
    extension: str
    doc: str
    description: str
    example: Any


DHIS2_FORMATS = (
    Dhis2Format("dhis2_json", "/exports/dhis2/dataValueSets.json", "json", "application/json",
                lambda export: _dumps(dhis2.data_value_set(export)), "dhis2", "json",
                doc="Export counts as a DHIS2 dataValueSet, with DHIS2 period ids.",
                description="A DHIS2 dataValueSet (import with the ids your mapping uses)",
                example=EXAMPLE_DATA_VALUE_SET),
    Dhis2Format("dhis2_csv", "/exports/dhis2/dataValueSets.csv", "csv", "text/csv",
                dhis2.data_value_csv, "dhis2", "csv",
                doc="Export counts in DHIS2's CSV data value format.",
                description="DHIS2's CSV data value format",
                example="dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,"
                        "value,storedby,lastupdated,comment,followup\r\n"
                        "FS_CONSULTATIONS,202611,08.587.01.13,OPH_F_50-64,,12,,,,\r\n"),
    Dhis2Format("adx_xml", "/exports/adx.xml", "adx", "application/adx+xml",
                dhis2.adx_document, "adx", "xml",
                doc="Export counts as an ADX message (periods as start/duration).",
                description="An IHE ADX message",
                example='<adx xmlns="urn:ihe:qrph:adx:2015" exported="2026-11-29T10:00:00Z">'
                        '<group orgUnit="08.587.01.13" period="2026-11-01/P1M" '
                        'dataSet="FIELDSVC_CARAVANS"><dataValue dataElement="FS_CONSULTATIONS" '
                        'SPECIALTY="OPH" SEX="F" AGE="50-64" value="12"/></group></adx>'),
)


def _dhis2_view(spec: Dhis2Format) -> Callable[[Dhis2Request], Response]:
    def view(wanted: Dhis2Request) -> Response:
        export = dhis2.dhis2_summary(wanted.query, wanted.unit, current_principal(), spec.kind)
        body = spec.render(export)
        db.session.commit()
        return _attachment(body, spec.content_type,
                           services.export_filename(spec.stem, wanted.query, spec.extension))

    return _export(spec.rule, Dhis2Args, spec.content_type, spec.description, spec.example,
                   name=spec.name, doc=spec.doc)(view)


for _spec in DHIS2_FORMATS:
    _dhis2_view(_spec)


def _report_response(report: reports.Report, lang: str, extension: str, stem: str) -> Response:
    html = reports.render_html(report, lang)
    if extension == "pdf":
        body = reports.render_pdf(html)
        db.session.commit()
        return _attachment(body, "application/pdf", f"{stem}_{lang}.pdf")
    db.session.commit()
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = reports.REPORT_CSP
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = f'inline; filename="{stem}_{lang}.html"'
    return response


def _regional(args: dict[str, Any], extension: str) -> Response:
    code = args.get("region") or args["province"]
    report = reports.regional_report(code, args.get("from_"), args.get("to"), current_principal())
    query = SummaryQuery(regions=[code] if args.get("region") else [],
                         provinces=[code] if args.get("province") else [],
                         start=args.get("from_"), end=args.get("to"))
    stem = services.export_filename("report", query, "x")[:-2]
    return _report_response(report, args["lang"], extension, stem)


def _caravan(args: dict[str, Any], extension: str, caravan_id: int) -> Response:
    report = reports.caravan_report(caravan_id, current_principal())
    return _report_response(report, args["lang"], extension, f"fieldsvc-caravan-{caravan_id}")


# Each report as a printable page and as PDF: (view name, rule, arguments, summary,
# description of the page, description of the PDF).
REPORTS = (
    ("report", "/exports/report", ReportArgs, _regional,
     "Report on a region or province for a period",
     "A printable report (print styles; Arabic right to left)",
     "The regional report as PDF (503 where the server cannot print)"),
    ("caravan_report", "/exports/caravans/<int:caravan_id>/report", LangArgs, _caravan,
     "Report on one caravan", "One caravan's report for its organizers and sponsors",
     "One caravan's report as PDF (503 where the server cannot print)"),
)
REPORT_FILES = {  # extension: (content type, example, how the summary ends)
    "html": ("text/html", "<!doctype html><html lang=\"fr\">…</html>", "as a printable page"),
    "pdf": ("application/pdf", "(PDF bytes)", "as PDF"),
}


def _report_view(extension: str, name: str, rule: str, schema: Any,
                 build: Callable[..., Response], summary: str, *descriptions: str) -> None:
    def view(args: dict[str, Any], **path: Any) -> Response:
        return build(args, extension, **path)

    content_type, example, ending = REPORT_FILES[extension]
    description = descriptions[list(REPORT_FILES).index(extension)]
    _export(f"{rule}.{extension}", schema, content_type, description, example,
            name=f"{name}_{extension}", doc=f"{summary}, {ending}.")(view)


for _extension in REPORT_FILES:
    for _report in REPORTS:
        _report_view(_extension, *_report)

"""Exports API: summaries as CSV, XLSX, JSON and GeoJSON; the detail of tally lines.

Every export takes the summary's query parameters and calls the same service as the API;
each is audited (who, which filters, how many rows) before its first byte is sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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


@blp.route("/exports/summary.csv", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, content_type="text/csv", example=EXAMPLE_CSV,
              description="UTF-8 CSV with a BOM (RFC 4180); a suppressed cell has an empty count "
                          "and suppressed = primary or complementary")
@replica_reads
def summary_csv(query: SummaryQuery):
    """Export a summary as CSV (streamed from the database with full detail)."""
    export = services.summary_export(query, current_principal(), "csv", stream=True)
    chunks = (services.copy_chunks(export.columns, export.copy_statement)
              if export.copy_statement is not None
              else services.csv_chunks(export.columns, export.rows))
    return _streamed(chunks, "text/csv", export.filename)


@blp.route("/exports/summary.xlsx", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              example="(XLSX bytes)",
              description="A workbook: the rows under a frozen header, and an about sheet")
@replica_reads
def summary_xlsx(query: SummaryQuery):
    """Export a summary as an Excel workbook (numbers as numbers, days as dates)."""
    export = services.summary_export(query, current_principal(), "xlsx", stream=True)
    if export.result is None:  # full detail: rows from the cursor, the file built as they come
        return _streamed(formats.xlsx_chunks(export.columns, export.rows, _about(export)),
                         XLSX, export.filename)
    body = formats.xlsx_bytes(export.columns, list(export.rows), _about(export))
    db.session.commit()
    return _attachment(body, XLSX, export.filename)


@blp.route("/exports/summary.json", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, content_type="application/json", example={"rows": [], "row_count": 0},
              description="Exactly what GET /api/v1/summary answers, as a file")
@replica_reads
def summary_json(query: SummaryQuery):
    """Export a summary as the summary API's JSON, as a file."""
    export = services.summary_export(query, current_principal(), "json", stream=True)
    if export.result is None:  # full detail: the document written as the cursor's rows come
        return _streamed(formats.summary_json_chunks(_stream_meta(export), export.rows, _dumps),
                         "application/json", export.filename)
    body = json.dumps(SummaryResultSchema().dump(export.result), ensure_ascii=False)
    db.session.commit()
    return _attachment(body, "application/json", export.filename)


@blp.route("/exports/summary.geojson", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, content_type="application/geo+json", example=EXAMPLE_GEOJSON,
              description="Areas as points with their figures (by must name an area level)")
@replica_reads
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
    body = json.dumps(formats.geojson(query.by, list(export.rows), meta), ensure_ascii=False)
    db.session.commit()
    return _attachment(body, "application/geo+json", export.filename)


@blp.route("/exports/detail.csv", methods=["GET"])
@allow("admin", "coordinator")
@blp.arguments(DetailArgs, location="query")
@blp.response(200, content_type="text/csv",
              example="\ufeffcaravan,caravan_title,site,site_name,commune,commune_name_fr,"
                      "commune_name_ar,day,specialty,measure,sex,age_band,condition,count,"
                      "review_status,version,submission\r\n"
                      "12,Caravane de Zagora,31,École Al Amal,08.587.01.13,Zagora,زاكورة,"
                      "2026-11-28,OPH,consultations,F,50-64,,12,approved,1,"
                      "5d1e8a47-2b9c-4f60-8e3a-c7b2d9f01a64\r\n",
              description="Every tally line (current versions) in the coordinator's regions")
@replica_reads
def detail_csv(query: DetailQuery):
    """Export every tally line in your regions for a period, to check a season in Excel."""
    export = services.detail_export(query, current_principal())
    chunks = (services.copy_chunks(export.columns, export.copy_statement)
              if export.copy_statement is not None
              else services.csv_chunks(export.columns, export.rows, mappings=False))
    return _streamed(chunks, "text/csv", export.filename)


EXAMPLE_DATA_VALUE_SET = {"dataSet": "FIELDSVC_CARAVANS", "dataValues": [
    {"dataElement": "FS_CONSULTATIONS", "period": "202611", "orgUnit": "08.587.01.13",
     "categoryOptionCombo": "OPH_F_50-64", "value": "12"}]}


@blp.route("/exports/dhis2/dataValueSets.json", methods=["GET"])
@allow(*STAFF)
@blp.arguments(Dhis2Args, location="query")
@blp.response(200, content_type="application/json", example=EXAMPLE_DATA_VALUE_SET,
              description="A DHIS2 dataValueSet (import with the ids your mapping uses)")
@replica_reads
def dhis2_json(wanted: Dhis2Request):
    """Export counts as a DHIS2 dataValueSet, with DHIS2 period ids."""
    export = dhis2.dhis2_summary(wanted.query, wanted.unit, current_principal(), "json")
    body = json.dumps(dhis2.data_value_set(export), ensure_ascii=False)
    db.session.commit()
    return _attachment(body, "application/json",
                       services.export_filename("dhis2", wanted.query, "json"))


@blp.route("/exports/dhis2/dataValueSets.csv", methods=["GET"])
@allow(*STAFF)
@blp.arguments(Dhis2Args, location="query")
@blp.response(200, content_type="text/csv", description="DHIS2's CSV data value format",
              example="dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,"
                      "value,storedby,lastupdated,comment,followup\r\n"
                      "FS_CONSULTATIONS,202611,08.587.01.13,OPH_F_50-64,,12,,,,\r\n")
@replica_reads
def dhis2_csv(wanted: Dhis2Request):
    """Export counts in DHIS2's CSV data value format."""
    export = dhis2.dhis2_summary(wanted.query, wanted.unit, current_principal(), "csv")
    body = dhis2.data_value_csv(export)
    db.session.commit()
    return _attachment(body, "text/csv", services.export_filename("dhis2", wanted.query, "csv"))


@blp.route("/exports/adx.xml", methods=["GET"])
@allow(*STAFF)
@blp.arguments(Dhis2Args, location="query")
@blp.response(200, content_type="application/adx+xml", description="An IHE ADX message",
              example='<adx xmlns="urn:ihe:qrph:adx:2015" exported="2026-11-29T10:00:00Z">'
                      '<group orgUnit="08.587.01.13" period="2026-11-01/P1M" '
                      'dataSet="FIELDSVC_CARAVANS"><dataValue dataElement="FS_CONSULTATIONS" '
                      'SPECIALTY="OPH" SEX="F" AGE="50-64" value="12"/></group></adx>')
@replica_reads
def adx_xml(wanted: Dhis2Request):
    """Export counts as an ADX message (periods as start/duration)."""
    export = dhis2.dhis2_summary(wanted.query, wanted.unit, current_principal(), "adx")
    body = dhis2.adx_document(export)
    db.session.commit()
    return _attachment(body, "application/adx+xml",
                       services.export_filename("adx", wanted.query, "xml"))


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


@blp.route("/exports/report.html", methods=["GET"])
@allow(*STAFF)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, content_type="text/html", example="<!doctype html><html lang=\"fr\">…</html>",
              description="A printable report (print styles; Arabic right to left)")
@replica_reads
def report_html(args: dict[str, Any]):
    """Report on a region or province for a period, as a printable page."""
    return _regional(args, "html")


@blp.route("/exports/report.pdf", methods=["GET"])
@allow(*STAFF)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, content_type="application/pdf", example="(PDF bytes)",
              description="The regional report as PDF (503 where the server cannot print)")
@replica_reads
def report_pdf(args: dict[str, Any]):
    """Report on a region or province for a period, as PDF."""
    return _regional(args, "pdf")


def _caravan(caravan_id: int, lang: str, extension: str) -> Response:
    report = reports.caravan_report(caravan_id, current_principal())
    return _report_response(report, lang, extension, f"fieldsvc-caravan-{caravan_id}")


@blp.route("/exports/caravans/<int:caravan_id>/report.html", methods=["GET"])
@allow(*STAFF)
@blp.arguments(LangArgs, location="query")
@blp.response(200, content_type="text/html", example="<!doctype html><html lang=\"fr\">…</html>",
              description="One caravan's report for its organizers and sponsors")
@replica_reads
def caravan_report_html(args: dict[str, Any], caravan_id: int):
    """Report on one caravan, as a printable page."""
    return _caravan(caravan_id, args["lang"], "html")


@blp.route("/exports/caravans/<int:caravan_id>/report.pdf", methods=["GET"])
@allow(*STAFF)
@blp.arguments(LangArgs, location="query")
@blp.response(200, content_type="application/pdf", example="(PDF bytes)",
              description="One caravan's report as PDF (503 where the server cannot print)")
@replica_reads
def caravan_report_pdf(args: dict[str, Any], caravan_id: int):
    """Report on one caravan, as PDF."""
    return _caravan(caravan_id, args["lang"], "pdf")

"""The phone form: app shell, service worker, manifest, translations and compression.

Everything the phone needs is served from this origin; its strings come from the same
Flask-Babel catalogs as the server's pages (see PHONE_STRINGS and /app/i18n/<lang>.json).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_babel import force_locale, get_locale, gettext, refresh

from fieldsvc.security import ALL_ROLES, allow

phone_blp = Blueprint("phone", __name__, template_folder="templates")

LANGUAGES = ("fr", "ar", "en")
RTL_LANGUAGES = {"ar"}
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "phone")
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
COMPRESSIBLE = ("text/", "application/json", "application/problem+json", "application/javascript",
                "application/manifest+json", "image/svg+xml", "application/xml")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated when the JSON is built."""
    return message


# The phone's strings, keyed for the JavaScript. English source, like every other _() string.
PHONE_STRINGS: dict[str, str] = {
    "app.title": N_("Caravan tallies"),
    "app.noscript": N_("This form needs JavaScript."),
    "lang.label": N_("Language"),
    "nav.tally": N_("New tally"),
    "nav.outbox": N_("My tallies"),
    "net.online": N_("Online"),
    "net.offline": N_("Offline: tallies are kept on this phone"),
    "join.title": N_("Join a caravan"),
    "join.code": N_("Join code"),
    "join.name": N_("Your name"),
    "join.specialty": N_("Your specialty"),
    "join.submit": N_("Join"),
    "join.again": N_("Your device token is no longer valid. Join again with the caravan's code: "
                     "your unsent tallies are kept."),
    "join.offline": N_("You are offline. Joining needs the network once."),
    "join.failed": N_("Could not join: {detail}"),
    "join.joined": N_("Joined: {title}"),
    "setup.title": N_("What are you counting?"),
    "setup.day": N_("Day"),
    "setup.site": N_("Site"),
    "setup.specialty": N_("Specialty"),
    "setup.start": N_("Start the tally"),
    "setup.no_site": N_("No particular site"),
    "setup.rejoin": N_("Join another caravan"),
    "grid.title": N_("Tally"),
    "grid.age": N_("Age"),
    "grid.total": N_("Total"),
    "grid.cell": N_("{measure}, {sex}, {age} years"),
    "grid.minus": N_("Remove one"),
    "grid.plus": N_("Add one"),
    "grid.breakdown": N_("Breakdown by ICD-10 chapter (optional)"),
    "grid.chapter": N_("ICD-10 chapter"),
    "grid.measure": N_("Measure"),
    "grid.add_chapter": N_("Add this chapter"),
    "grid.remove_chapter": N_("Remove this chapter"),
    "grid.unattributed": N_("Not attributed to a chapter"),
    "grid.review": N_("Review"),
    "review.title": N_("Review before sending"),
    "review.empty": N_("Enter at least one count before sending."),
    "review.edit": N_("Back to the grid"),
    "review.send": N_("Send"),
    "review.amend": N_("Send the amendment"),
    "review.saved": N_("Saved on this phone; it is sent as soon as the network allows."),
    "warn.title": N_("Please check"),
    "warn.many": N_("More than 150 consultations in one day ({n})."),
    "warn.procedures": N_("More procedures than consultations."),
    "warn.referrals": N_("More referrals than consultations."),
    "warn.glasses": N_("Glasses are counted outside ophthalmology."),
    "outbox.title": N_("My tallies"),
    "outbox.empty": N_("No tallies yet."),
    "outbox.amend": N_("Amend"),
    "outbox.edit": N_("Edit and send again"),
    "outbox.sync": N_("Send now"),
    "outbox.summary": N_("{day} · {specialty} · {n} consultations"),
    "status.pending": N_("Pending"),
    "status.sent": N_("Sent"),
    "status.attention": N_("Needs attention"),
}


def phone_strings(lang: str) -> dict[str, str]:
    """Translate the phone's strings into one language from the compiled catalogs."""
    with force_locale(lang):
        return {key: gettext(message) for key, message in PHONE_STRINGS.items()}


def _lang() -> str:
    refresh()  # choose afresh for every request (tests reuse one app context across requests)
    locale = str(get_locale() or "fr")
    return locale if locale in LANGUAGES else "fr"


@lru_cache(maxsize=64)
def _static_file(name: str, mtime: float) -> bytes:
    with open(os.path.join(STATIC_DIR, name), "rb") as handle:
        return handle.read()


def _read_static(name: str) -> bytes | None:
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = os.path.join(STATIC_DIR, name)
    if os.path.splitext(name)[1] not in STATIC_TYPES or not os.path.isfile(path):
        return None
    return _static_file(name, os.path.getmtime(path))


def shell_version() -> str:
    """A digest of the app shell's files: a new version makes phones refresh their cache."""
    stamps = tuple(
        (name, os.path.getmtime(os.path.join(STATIC_DIR, name)))
        for name in sorted(os.listdir(STATIC_DIR))
    )
    return _shell_version(stamps)


@lru_cache(maxsize=8)
def _shell_version(stamps: tuple[tuple[str, float], ...]) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(STATIC_DIR)):
        data = _read_static(name)
        if data is not None:
            digest.update(name.encode() + data)
    for lang in LANGUAGES:
        digest.update(json.dumps(phone_strings(lang), sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _shell(join_code: str = "") -> str:
    lang = _lang()
    strings = phone_strings(lang)
    return render_template(
        "phone/app.html", lang=lang, dir="rtl" if lang in RTL_LANGUAGES else "ltr",
        t=strings, join_code=join_code, version=shell_version(), languages=LANGUAGES,
    )


@phone_blp.route("/app")
@allow(*ALL_ROLES)
def app_shell() -> str:
    """Serve the tally app shell (works offline once cached)."""
    return _shell()


@phone_blp.route("/join")
@phone_blp.route("/join/<code>")
@allow(*ALL_ROLES)
def join(code: str = "") -> str:
    """Serve the app shell opened on the join screen, with the code filled in."""
    return _shell(code.strip().upper()[:16])


@phone_blp.route("/app/i18n/<lang>.json")
@allow(*ALL_ROLES)
def phone_i18n(lang: str) -> Response:
    """Give the phone's strings in one language, from the Flask-Babel catalogs."""
    if lang not in LANGUAGES:
        abort(404)
    response = current_app.json.response(
        {"lang": lang, "dir": "rtl" if lang in RTL_LANGUAGES else "ltr",
         "strings": phone_strings(lang)}
    )
    response.headers["Cache-Control"] = "no-cache"
    return _conditional(response)


@phone_blp.route("/app/static/<name>")
@allow(*ALL_ROLES)
def phone_static(name: str) -> Response:
    """Serve the phone's JavaScript, CSS and icons."""
    data = _read_static(name)
    if data is None or name == "sw.js":
        abort(404)
    response = Response(data, mimetype=STATIC_TYPES[os.path.splitext(name)[1]])
    # URLs carry ?v=<shell version>: a versioned file never changes.
    if request.args.get("v"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return _conditional(response)


def _conditional(response: Response) -> Response:
    """Answer 304 when the client holds this body, compressed (ETag "…-gz") or not."""
    etag = hashlib.sha256(response.get_data()).hexdigest()[:16]
    if request.if_none_match.contains(etag) or request.if_none_match.contains(etag + "-gz"):
        not_modified = Response(status=304)
        not_modified.set_etag(etag)
        not_modified.headers["Cache-Control"] = response.headers.get("Cache-Control", "no-cache")
        return not_modified
    response.set_etag(etag)
    return response


@phone_blp.route("/sw.js")
@allow(*ALL_ROLES)
def service_worker() -> Response:
    """Serve the service worker from the root scope, stamped with the shell version."""
    data = _read_static("sw.js") or b""
    body = data.decode("utf-8").replace("__VERSION__", shell_version())
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@phone_blp.route("/manifest.webmanifest")
@allow(*ALL_ROLES)
def manifest() -> Response:
    """Describe the installable web app."""
    lang = _lang()
    strings = phone_strings(lang)
    body = {
        "name": strings["app.title"],
        "short_name": "fieldsvc",
        "lang": lang,
        "dir": "rtl" if lang in RTL_LANGUAGES else "ltr",
        "start_url": "/app",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b6e4f",
        "icons": [
            {"src": url_for("web.phone.phone_static", name="icon.svg"), "sizes": "any",
             "type": "image/svg+xml", "purpose": "any"},
            {"src": url_for("web.phone.phone_static", name="icon-192.png"), "sizes": "192x192",
             "type": "image/png"},
            {"src": url_for("web.phone.phone_static", name="icon-512.png"), "sizes": "512x512",
             "type": "image/png", "purpose": "any maskable"},
        ],
    }
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")


@phone_blp.after_app_request
def _compress(response: Response) -> Response:
    """Gzip text and JSON answers to GET requests when the client accepts it."""
    if (
        request.method not in ("GET", "HEAD")
        or response.direct_passthrough
        or response.is_streamed
        or response.status_code < 200
        or response.status_code in (204, 206, 304)
        or "Content-Encoding" in response.headers
        or not (response.mimetype or "").startswith(COMPRESSIBLE)
    ):
        return response
    response.vary.add("Accept-Encoding")
    data = response.get_data()
    if len(data) < 1024 or "gzip" not in request.headers.get("Accept-Encoding", "").lower():
        return response
    response.set_data(_gzip(data))
    response.headers["Content-Encoding"] = "gzip"
    if response.headers.get("ETag"):
        # A strong ETag names one representation; the compressed one is another.
        etag, weak = response.get_etag()
        if etag and not weak:
            response.set_etag(etag + "-gz")
    return response


def _gzip(data: bytes) -> bytes:
    if (request.endpoint or "").startswith("web.phone."):
        return _gzip_shell(data)  # the shell's few files: compress each once
    return gzip.compress(data, compresslevel=6, mtime=0)


@lru_cache(maxsize=32)
def _gzip_shell(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)

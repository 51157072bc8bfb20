"""The phone form: app shell, service worker, manifest and translations.

Everything the phone needs is served from this origin; its strings come from the same
Flask-Babel catalogs as the server's pages (see PHONE_STRINGS and /app/i18n/<lang>.json).
Compression and conditional answers are Flask-Compress's and werkzeug's (fieldsvc.http).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import force_locale, get_locale, get_translations, gettext, ngettext

from fieldsvc.security import ALL_ROLES, allow
from fieldsvc.web.services import languages

phone_blp = Blueprint("phone", __name__, template_folder="templates")

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "phone")
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


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
    "status.pending": N_("Pending"),
    "status.sent": N_("Sent"),
    "status.attention": N_("Needs attention"),
    "review.sent": N_("Sent: your coordinator can see it now."),
    "review_status.approved": N_("Approved"),
    "review_status.flagged": N_("To correct"),
    "review_status.rejected": N_("Rejected"),
    "outbox.reason": N_("Coordinator: {reason}"),
    "outbox.correct": N_("Correct it"),
    "app.no_offline": N_("This address is not secure (no HTTPS), so this form cannot work "
                         "offline: without network, reloading it fails. What you type stays on "
                         "this phone. Ask your coordinator for the HTTPS address."),
    "draft.title": N_("Unfinished tally"),
    "draft.text": N_("{day} · {specialty}: kept on this phone, not sent yet."),
    "draft.resume": N_("Resume this tally"),
    "draft.discard": N_("Discard it"),
    "draft.first": N_("Resume or discard the unfinished tally before starting another."),
    "draft.restored": N_("Your unfinished tally is back where you left it."),
    "nav.me": N_("My record"),
    "me.title": N_("My volunteer record"),
    "me.none": N_("This device has no volunteer profile: join a caravan first, with a profile."),
    "me.summary": N_("{days} days · {consultations} consultations · {procedures} procedures"),
    "me.caravans": N_("My caravans"),
    "me.caravan": N_("{title} · {first_day} · {days} days · {consultations} consultations"),
    "me.certificates": N_("My certificates"),
    "me.certificate": N_("Certificate {code}"),
    "me.consent": N_("Name me on public pages"),
    "me.saved": N_("Saved."),
    "me.offline": N_("You are offline; try again with the network."),
    "me.erase": N_("Erase my profile"),
    "me.erase_confirm": N_("Erase your profile? Your tallies stay, with no name attached. "
                           "This cannot be undone."),
    "me.erased": N_("Your profile is erased; your tallies stay, unattributed."),
}

# Strings with a number: every plural form of the language, chosen on the phone with PLURAL_INDEX.
PHONE_PLURALS: dict[str, Callable[[int], str]] = {
    "outbox.summary": lambda n: ngettext("{day} · {specialty} · {n} consultation",
                                         "{day} · {specialty} · {n} consultations", n),
    "warn.many": lambda n: ngettext("More than 150 consultations in one day ({n}).",
                                    "More than 150 consultations in one day ({n}).", n),
}
# From 200 on, n reads as 100 + n % 100 does: true of Arabic's and English's rules (CLDR), and of
# French's but for millions, whose form reads the same as the other plural.
PLURAL_TABLE_SIZE = 200


def phone_strings(lang: str) -> dict[str, Any]:
    """Translate the phone's strings into one language from the compiled catalogs.

    A string with a number is the list of its plural forms; ``plural_index(lang)`` says which
    form each number takes.
    """
    with force_locale(lang):
        strings: dict[str, Any] = {key: gettext(message) for key, message in PHONE_STRINGS.items()}
        index = plural_index(lang)
        examples = {form: index.index(form) for form in sorted(set(index))}
        for key, forms in PHONE_PLURALS.items():
            # A form no number below 200 takes (French's millions) is never chosen; any n fills it.
            strings[key] = [forms(examples.get(form, 10**6)) for form in range(max(index) + 1)]
    return strings


def plural_index(lang: str) -> list[int]:
    """Which plural form (of the language's catalog) each number from 0 to 199 takes."""
    with force_locale(lang):
        plural = getattr(get_translations(), "plural", None)
        if plural is None:  # no catalog: English rules
            return [0 if n == 1 else 1 for n in range(PLURAL_TABLE_SIZE)]
        return [int(plural(n)) for n in range(PLURAL_TABLE_SIZE)]


def _language() -> tuple[str, str]:
    """The request's language and its text direction (Flask-Babel chose it for this request)."""
    chosen = str(get_locale() or "")
    offered = {language.code: language for language in languages()}
    language = offered.get(chosen) or next(iter(offered.values()))
    return language.code, language.dir


def _static_path(name: str) -> str | None:
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = os.path.join(STATIC_DIR, name)
    if os.path.splitext(name)[1] not in STATIC_TYPES or not os.path.isfile(path):
        return None
    return path


def shell_version() -> str:
    """A digest of the app shell's files: a new version makes phones refresh their cache."""
    stamps = tuple(
        (name, os.path.getmtime(os.path.join(STATIC_DIR, name)))
        for name in sorted(os.listdir(STATIC_DIR))
    )
    return _shell_version(stamps, tuple(language.code for language in languages()))


@lru_cache(maxsize=8)
def _shell_version(stamps: tuple[tuple[str, float], ...], codes: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name, _stamp in stamps:
        path = _static_path(name)
        if path is not None:
            with open(path, "rb") as handle:
                digest.update(name.encode() + handle.read())
    for code in codes:
        digest.update(json.dumps([phone_strings(code), plural_index(code)],
                                 sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _shell(join_code: str = "") -> str:
    lang, direction = _language()
    return render_template(
        "phone/app.html", lang=lang, dir=direction, t=phone_strings(lang), join_code=join_code,
        version=shell_version(), languages=languages(),
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
    language = next((known for known in languages() if known.code == lang), None)
    if language is None:
        abort(404)
    response = current_app.json.response(
        {"lang": lang, "dir": language.dir, "strings": phone_strings(lang),
         "plural": plural_index(lang)})
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


@phone_blp.route("/app/static/<name>")
@allow(*ALL_ROLES)
def phone_static(name: str) -> Response:
    """Serve the phone's JavaScript, CSS and icons."""
    if _static_path(name) is None or name == "sw.js":
        abort(404)
    response = send_from_directory(STATIC_DIR, name,
                                   mimetype=STATIC_TYPES[os.path.splitext(name)[1]])
    # These files are a few KB: read them whole so that Flask-Compress compresses them like any
    # answer (it leaves the file of a streamed answer open).
    response.direct_passthrough = False
    response.make_sequence()
    # URLs carry ?v=<shell version>: a versioned file never changes.
    if request.args.get("v"):
        response.cache_control.public = True
        response.cache_control.max_age = 31536000
        response.cache_control.immutable = True
        response.cache_control.no_cache = None
    else:
        response.cache_control.no_cache = True
    return response


@phone_blp.route("/sw.js")
@allow(*ALL_ROLES)
def service_worker() -> Response:
    """Serve the service worker from the root scope, stamped with the shell version."""
    with open(os.path.join(STATIC_DIR, "sw.js"), encoding="utf-8") as handle:
        body = (handle.read().replace("__VERSION__", shell_version())
                .replace("__LANGUAGES__", " ".join(lang.code for lang in languages())))
    response = Response(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@phone_blp.route("/manifest.webmanifest")
@allow(*ALL_ROLES)
def manifest() -> Response:
    """Describe the installable web app."""
    lang, direction = _language()
    strings = phone_strings(lang)
    body = {
        "name": strings["app.title"],
        "short_name": "fieldsvc",
        "lang": lang,
        "dir": direction,
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

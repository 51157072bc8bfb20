"""Every user-facing string is translated in French, Arabic and English, from one catalog set."""

from __future__ import annotations

import os

from babel.messages import checkers
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOGS = os.path.join(ROOT, "fieldsvc", "translations")
LANGUAGES = ("fr", "ar", "en")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "N_": None, "pgettext": ((1, "c"), 2)}


def _catalog(lang: str):
    with open(os.path.join(CATALOGS, lang, "LC_MESSAGES", "messages.po"), "rb") as handle:
        return read_po(handle, locale=lang)


def _source_msgids() -> set[str]:
    with open(os.path.join(ROOT, "babel.cfg"), encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple | list) else message)
    return {m for m in found if m}


def test_every_catalog_is_complete_and_not_fuzzy():
    problems = []
    for lang in LANGUAGES:
        for message in _catalog(lang):
            if not message.id:
                continue
            strings = message.string
            if not isinstance(strings, tuple | list):
                strings = [strings]
            if not all(s and s.strip() for s in strings):
                problems.append(f"{lang}: untranslated {message.id!r}")
            if message.fuzzy:
                problems.append(f"{lang}: fuzzy {message.id!r}")
    assert not problems, "\n".join(problems)


def test_every_string_in_the_code_is_in_every_catalog():
    """A new _() string fails here until `make translations` merged it and someone translated it."""
    source = _source_msgids()
    assert len(source) > 50
    for lang in LANGUAGES:
        msgids = {m.id[0] if isinstance(m.id, tuple | list) else m.id
                  for m in _catalog(lang) if m.id}
        missing = sorted(source - msgids)
        assert not missing, f"{lang} lacks {missing} (run `make translations`, translate them)"


def test_placeholders_survive_translation():
    problems = []
    for lang in LANGUAGES:
        catalog = _catalog(lang)
        for message in catalog:
            if not message.id:
                continue
            try:
                checkers.python_format(catalog, message)
            except Exception as error:  # noqa: BLE001 - TranslationError and friends
                problems.append(f"{lang}: {message.id!r}: {error}")
            if isinstance(message.id, tuple | list):
                # Plural forms: each keeps the other placeholders; a form for one or two (Arabic
                # "فحص واحد", "فحصان") may say the number in words, the last one ("other") says {n}.
                for name in _braces(message.id[1]):
                    forms = message.string if name != "{n}" else message.string[-1:]
                    if any(name not in form for form in forms):
                        problems.append(f"{lang}: {message.id[0]!r} lost {name}")
                continue
            for name in _braces(message.id):
                if name not in (message.string or ""):
                    problems.append(f"{lang}: {message.id!r} lost {name}")
    assert not problems, "\n".join(problems)


def test_arabic_and_french_are_not_left_in_english():
    ar, fr = _catalog("ar"), _catalog("fr")
    untouched_ar = [m.id for m in ar if m.id and m.string == m.id]
    assert not untouched_ar, untouched_ar
    # French shares a few words with English (Total, Site, Consultations); nothing more.
    untouched_fr = [m.id for m in fr if m.id and m.string == m.id and len(m.id.split()) > 1]
    assert untouched_fr == [m for m in untouched_fr if "{" in m], untouched_fr


def _braces(text: str) -> list[str]:
    import re

    return re.findall(r"\{[a-z_]+\}", text)

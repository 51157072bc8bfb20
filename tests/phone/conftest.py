"""Compile the catalogs when they are missing or stale (`make install` does it too)."""

from __future__ import annotations

import os

import pytest

TRANSLATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "fieldsvc", "translations")


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs() -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for lang in os.listdir(TRANSLATIONS):
        folder = os.path.join(TRANSLATIONS, lang, "LC_MESSAGES")
        po, mo = os.path.join(folder, "messages.po"), os.path.join(folder, "messages.mo")
        if not os.path.exists(po):
            continue
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        with open(po, "rb") as handle:
            catalog = read_po(handle, locale=lang)
        with open(mo, "wb") as handle:
            write_mo(handle, catalog)

"""Folding names for search and matching: case, Latin accents, Arabic letter forms."""

from __future__ import annotations

import re
import unicodedata

_ARABIC_DIACRITICS = re.compile("[\u064b-\u065f\u0670\u0640]")
_ARABIC_FOLD = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"}
)


def fold(text: str) -> str:
    """Lower-case, strip Latin accents and Arabic diacritics, unify alef/ya/ta marbuta forms."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _ARABIC_DIACRITICS.sub("", text).translate(_ARABIC_FOLD)
    text = re.sub(r"[^\w\u0600-\u06ff]+", " ", text.lower())
    return " ".join(text.split())


def search_key(name_fr: str, name_ar: str) -> str:
    """The text area search matches against."""
    return f"{fold(name_fr)} | {fold(name_ar)}"

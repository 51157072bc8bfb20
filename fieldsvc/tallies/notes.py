"""A submission's note is for the coordinator ("power cut in the afternoon"), never about a
patient: obvious identifiers are refused before anything is stored (law 09-08, DESIGN.md)."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

# A phone number or an ID number: eight or more digits, spaces, dots or dashes between them
# allowed (06 61 23 45 67, +212 661-234567, 0524.88.12.34).
_LONG_NUMBER = re.compile(r"(?<!\d)(?:\+|00)?\d(?:[\s.\-/]?\d){7,}(?!\d)")
# A Moroccan national identity card number (CIN): one or two capital letters and 3 to 7 digits.
_CIN = re.compile(r"\b[A-Z]{1,2}\s?\d{3,7}\b")
_CIN_WORD = re.compile(r"\b(?:CIN|CNIE|C\.I\.N|carte nationale|passeport|passport|"
                       r"البطاقة الوطنية|بطاقة التعريف|رقم البطاقة)\b", re.IGNORECASE)
# A birth date: said so (né le, DDN, date de naissance, born, تاريخ الازدياد), or a full date
# in the last century (no caravan or tally is dated before 2000).
_BIRTH_WORDS = re.compile(
    r"\b(?:née?\s+le|date\s+de\s+naissance|ddn|naissance|born|birth|dob)\b|"
    r"(?:تاريخ\s+الازدياد|تاريخ\s+الميلاد|مزداد|مزدادة|ولد\s+في|ولدت\s+في)", re.IGNORECASE)
# Dates of this century are the caravan's own (a day, a follow-up), not a birth date or a number.
_RECENT_DATE = re.compile(r"\b\d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*2\d{3}\b|\b2\d{3}-\d{2}-\d{2}\b")
_OLD_DATE = re.compile(r"\b\d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*19\d{2}\b")
# A name after "patient", "patiente", "malade", "Mme", "M." (a capitalised word), or after
# مريض / مريضة when introduced (اسمه, اسمها, السيد, السيدة, or a colon).
_NAMED_PATIENT = re.compile(
    r"\b(?:[Pp]atiente?|PATIENTE?|[Mm]alade|Mme|Mlle|Mr|Mrs|Monsieur|Madame|M\.)\s*[:,]?\s*"
    r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'\-]{1,}")
_NAMED_PATIENT_AR = re.compile(
    r"(?:ال)?مريض(?:ة)?\s*(?::|اسمه|اسمها|السيد|السيدة|المسمى|المسماة)\s*\S+|"
    r"(?:ال)?مريض(?:ة)?\s+(?:السيد|السيدة)\s+\S+")


def identifier_in_note(note: str | None) -> str | None:
    """Why this note must not be stored (it seems to identify a patient), or None if it may."""
    if not note:
        return None
    if _BIRTH_WORDS.search(note) or _OLD_DATE.search(note):
        return str(_l("The note seems to hold a date of birth; never write anything that "
                      "identifies a patient."))
    if _CIN.search(note) or _CIN_WORD.search(note):
        return str(_l("The note seems to hold an identity card number; never write anything "
                      "that identifies a patient."))
    if _LONG_NUMBER.search(_RECENT_DATE.sub(" ", note)):
        return str(_l("The note seems to hold a phone or ID number; never write anything that "
                      "identifies a patient."))
    if _NAMED_PATIENT.search(note) or _NAMED_PATIENT_AR.search(note):
        return str(_l("The note seems to name a patient; never write anything that identifies "
                      "a patient."))
    return None

"""A realistic, reproducible demo season (fixed seed)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from fieldsvc.accounts.models import User
from fieldsvc.accounts.services import create_user, get_or_create_organization
from fieldsvc.areas.models import Area
from fieldsvc.catalog.services import ensure_catalog
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db

# (name, Arabic name, kind)
ORGANIZATIONS = [
    ("Wahat Al-Khair", "واحة الخير", "association"),
    ("Association Al-Muqim des médecins résidents", "جمعية المقيم للأطباء المقيمين", "association"),
    ("Union des femmes marocaines", "اتحاد النساء المغربيات", "association"),
    ("Zuhur Al-Waha pour le développement social", "زهور الواحة للتنمية الاجتماعية", "association"),
    ("Conseil communal de Ouahat Sidi Brahim", "المجلس الجماعي لواحة سيدي ابراهيم",
     "commune_council"),
]

# Drâa-Tafilalet (Zagora, Tinghir…) and Marrakech-Safi (Ouahat Sidi Brahim).
DEMO_REGIONS = ("08", "07")

DEMO_LOGINS = [
    ("coordinator", "demo-coordinator", "coordinator"),
    ("planner", "demo-planner", "planner"),
    ("admin", "demo-admin", "admin"),
]


def load_demo(echo: Callable[[str], object] = print) -> str:
    """Create the demo organizations and accounts if they are missing (idempotent)."""
    ensure_catalog()
    regions = select(func.count()).select_from(Area).where(Area.code.in_(DEMO_REGIONS))
    if db.session.scalar(regions) < len(DEMO_REGIONS):
        raise ValidationFailed("The demo needs Morocco's areas: run `flask --app wsgi areas load` "
                               "first.", errors={"areas": ["regions 07 and 08 are missing"]})
    organizations = {
        name: get_or_create_organization(name, kind=kind, name_ar=name_ar)
        for name, name_ar, kind in ORGANIZATIONS
    }
    created = 0
    if db.session.scalar(select(User).where(User.username == "coordinator")) is None:
        create_user("coordinator", "demo-coordinator", "coordinator",
                    region_codes=list(DEMO_REGIONS),
                    display_name="Coordinatrice Drâa-Tafilalet et Marrakech-Safi")
        created += 1
    if db.session.scalar(select(User).where(User.username == "planner")) is None:
        create_user("planner", "demo-planner", "planner",
                    organization=organizations["Wahat Al-Khair"],
                    display_name="Planificatrice, Wahat Al-Khair")
        created += 1
    if db.session.scalar(select(User).where(User.username == "admin")) is None:
        create_user("admin", "demo-admin", "admin", display_name="Administrateur")
        created += 1
    from fieldsvc.tallies.demo import load_season

    season = load_season([organizations[name] for name, _, _ in ORGANIZATIONS], echo)
    return f"Demo: {len(organizations)} organizations, {created} accounts created. {season}"

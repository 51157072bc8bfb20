"""A realistic, reproducible demo season (fixed seed)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from fieldsvc.accounts.models import User
from fieldsvc.accounts.services import create_user, get_or_create_organization
from fieldsvc.catalog.services import ensure_catalog
from fieldsvc.extensions import db

# (name, Arabic name, kind)
ORGANIZATIONS = [
    ("Wahat Al-Khair", "واحة الخير", "association"),
    ("Association Al-Muqim des médecins résidents", "جمعية المقيم للأطباء المقيمين", "association"),
    ("Union de l'Action Féminine", "اتحاد العمل النسائي", "association"),
    ("Zuhur Al-Waha pour le développement social", "زهور الواحة للتنمية الاجتماعية", "association"),
    ("Conseil communal de Ouahat Sidi Brahim", "المجلس الجماعي لواحة سيدي ابراهيم", "commune_council"),
]

DEMO_LOGINS = [
    ("coordinator", "demo-coordinator", "coordinator"),
    ("planner", "demo-planner", "planner"),
    ("admin", "demo-admin", "admin"),
]


def load_demo(echo: Callable[[str], object] = print) -> str:
    """Create the demo organizations and accounts if they are missing (idempotent)."""
    ensure_catalog()
    organizations = {
        name: get_or_create_organization(name, kind=kind, name_ar=name_ar)
        for name, name_ar, kind in ORGANIZATIONS
    }
    created = 0
    if db.session.scalar(select(User).where(User.username == "coordinator")) is None:
        create_user("coordinator", "demo-coordinator", "coordinator",
                    region_codes=["08", "07"], display_name="Coordinatrice Drâa-Tafilalet")
        created += 1
    if db.session.scalar(select(User).where(User.username == "planner")) is None:
        create_user("planner", "demo-planner", "planner",
                    organization=organizations["Wahat Al-Khair"], display_name="Wahat Al-Khair")
        created += 1
    if db.session.scalar(select(User).where(User.username == "admin")) is None:
        create_user("admin", "demo-admin", "admin", display_name="Administrateur")
        created += 1
    return f"Demo: {len(organizations)} organizations, {created} accounts created."

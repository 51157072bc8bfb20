"""`flask --app wsgi users create …` and `users list`: the operator's way to add staff."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from fieldsvc.accounts.models import AuditEvent, Organization, User
from tests.factories import make_areas


def user(db, name: str) -> User:
    return db.session.scalar(select(User).where(User.username == name))


def test_create_a_coordinator_with_regions(runner, db):
    make_areas()
    db.session.commit()

    result = runner.invoke(args=["users", "create", "amina", "--role", "coordinator",
                                 "--region", "08", "--region", "07",
                                 "--password", "palmeraie-zagora-2026"])

    assert result.exit_code == 0, result.output
    assert "Created coordinator 'amina' in regions 07, 08." in result.output
    amina = user(db, "amina")
    assert amina.region_codes == ["07", "08"]
    assert check_password_hash(amina.password_hash, "palmeraie-zagora-2026")
    assert amina.password_hash != "palmeraie-zagora-2026"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user_created"))
    assert (event.actor_kind, event.object_id) == ("system", str(amina.id))


def test_password_is_prompted_twice_when_not_given(runner, db):
    result = runner.invoke(args=["users", "create", "root", "--role", "admin"],
                           input="first-try-number-1\nfirst-try-number-2\ndate-palms-at-dusk\ndate-palms-at-dusk\n")

    assert result.exit_code == 0, result.output
    assert result.output.count("Password:") == 2
    assert "Repeat for confirmation:" in result.output
    assert "do not match" in result.output  # the first pair differed, so it asked again
    assert "first-try" not in result.output  # hidden input
    assert check_password_hash(user(db, "root").password_hash, "date-palms-at-dusk")


def test_planner_joins_an_organization_created_if_missing(runner, db):
    result = runner.invoke(args=["users", "create", "fatima", "--role", "planner",
                                 "--organization", "Wahat Al-Khair", "--password", "draa-valley-oasis-2026",
                                 "--display-name", "Fatima Zahra"])

    assert result.exit_code == 0, result.output
    assert "Created the organization 'Wahat Al-Khair'" in result.output
    fatima = user(db, "fatima")
    assert fatima.organization.name == "Wahat Al-Khair"
    assert fatima.display_name == "Fatima Zahra"

    again = runner.invoke(args=["users", "create", "youssef", "--role", "planner",
                                "--organization", "Wahat Al-Khair", "--password", "draa-valley-oasis-2026"])
    assert again.exit_code == 0, again.output
    assert "Created the organization" not in again.output
    assert len(db.session.scalars(select(Organization)).all()) == 1


def test_unknown_region_is_a_clear_error(runner, db):
    make_areas()
    db.session.commit()
    result = runner.invoke(args=["users", "create", "amina", "--role", "coordinator",
                                 "--region", "99", "--password", "palmeraie-zagora-2026"])
    assert result.exit_code == 1
    assert "'99' n'est pas un code de région" in result.output  # the default locale, fr
    province = runner.invoke(args=["users", "create", "amina", "--role", "coordinator",
                                   "--region", "08.587", "--password", "palmeraie-zagora-2026"])
    assert "'08.587' n'est pas un code de région" in province.output
    assert user(db, "amina") is None


def test_regions_before_areas_are_loaded(runner, db):
    result = runner.invoke(args=["users", "create", "amina", "--role", "coordinator",
                                 "--region", "08", "--password", "palmeraie-zagora-2026"])
    assert result.exit_code == 1
    assert "areas load" in result.output


def test_unknown_role_is_a_clear_error(runner, db):
    result = runner.invoke(args=["users", "create", "x", "--role", "doctor", "--password", "p" * 9])
    assert result.exit_code == 2
    assert "'doctor' is not one of 'admin', 'coordinator', 'planner'" in result.output


def test_role_rules(runner, db):
    make_areas()
    db.session.commit()
    no_region = runner.invoke(args=["users", "create", "a", "--role", "coordinator",
                                    "--password", "palmeraie-zagora-2026"])
    assert "Un coordinateur doit avoir au moins une région." in no_region.output
    no_org = runner.invoke(args=["users", "create", "p", "--role", "planner",
                                 "--password", "palmeraie-zagora-2026"])
    assert no_org.exit_code == 2
    assert "--organization" in no_org.output
    admin_region = runner.invoke(args=["users", "create", "r", "--role", "admin", "--region", "08",
                                       "--password", "palmeraie-zagora-2026"])
    assert admin_region.exit_code == 2
    assert "Only coordinators have regions" in admin_region.output
    assert db.session.scalars(select(User)).all() == []


@pytest.mark.parametrize("password, why", [
    ("short", "au moins 12 caractères"),
    ("eleven-char", "au moins 12 caractères"),
    ("rootrootroot", "ne doit pas être ni contenir le nom d'utilisateur"),
    ("my-Root-password", "ne doit pas être ni contenir le nom d'utilisateur"),
    ("motdepasse123", "trop courant"),
    ("aaaaaaaaaaaaaaaa", "trop courant"),
])
def test_password_policy(runner, db, password, why):
    refused = runner.invoke(args=["users", "create", "root", "--role", "admin",
                                  "--password", password])
    assert refused.exit_code == 1
    assert why in refused.output
    assert db.session.scalars(select(User)).all() == []


def test_taken_name(runner, db):
    runner.invoke(args=["users", "create", "root", "--role", "admin", "--password", "long-enough-phrase"])
    taken = runner.invoke(args=["users", "create", "root", "--role", "admin",
                                "--password", "long-enough-phrase"])
    assert taken.exit_code == 1
    assert "existe déjà" in taken.output


def test_users_list(runner, db):
    make_areas()
    db.session.commit()
    runner.invoke(args=["users", "create", "amina", "--role", "coordinator", "--region", "08",
                        "--password", "palmeraie-zagora-2026"])
    runner.invoke(args=["users", "create", "fatima", "--role", "planner", "--organization",
                        "Wahat Al-Khair", "--password", "draa-valley-oasis-2026"])

    result = runner.invoke(args=["users", "list"])

    header, *lines = result.output.splitlines()
    assert header.split() == ["USERNAME", "ROLE", "REGIONS", "ORGANIZATION"]
    assert header.index("ROLE") == lines[0].index("coordinator")  # columns line up
    assert lines[0].split() == ["amina", "coordinator", "08", "-"]
    assert lines[1].split()[:3] == ["fatima", "planner", "-"]
    assert "Wahat Al-Khair" in lines[1]


def test_username_that_basic_auth_could_not_carry_is_refused(runner, db):
    result = runner.invoke(args=["users", "create", "dr:amina", "--role", "admin",
                                 "--password", "long-enough-phrase"])
    assert result.exit_code == 1
    assert "sans espaces ni deux-points" in result.output
    assert db.session.scalars(select(User)).all() == []

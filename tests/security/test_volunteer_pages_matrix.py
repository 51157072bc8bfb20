"""Who may open the recognition pages: contributions, notifications, certificates, verification.

The same roles as the API matrix (tests/security/test_authorization_matrix.py); a caller outside
a row's audience is refused (401/403, or sent to the login page); nobody gets a 5xx.
"""

from __future__ import annotations

import pytest

from fieldsvc.caravans.models import Caravan, Enrollment, Volunteer
from fieldsvc.volunteers.services import certificate_code
from tests.security.test_authorization_matrix import COORDINATORS, EVERYONE, IN_SCOPE, STAFF, _world

pytestmark = pytest.mark.usefixtures("fresh_release")

PAGES = [
    ("/contributions", EVERYONE),
    ("/contributions?by=partnership", EVERYONE),
    ("/contributions?by=volunteer", EVERYONE),
    ("/notifications", STAFF),
    ("/volunteers/{volunteer}/certificates", COORDINATORS),
    ("/certificates/{code}", COORDINATORS),
    ("/verify", EVERYONE),
    ("/verify/{code}", EVERYONE),
    ("/pledge/{join_code}", EVERYONE),
    ("/caravans/{caravan}/staffing", IN_SCOPE),
]


def test_recognition_pages_matrix(app, client, db):
    world = _world(db)
    volunteer = Volunteer(display_name="Dr Amina", public_consent=True,
                          profile_key_hash="d" * 64)
    db.session.add(volunteer)
    db.session.flush()
    enrollment = db.session.scalars(db.select(Enrollment)).first()
    enrollment.volunteer_id = volunteer.id
    db.session.commit()
    values = {"volunteer": volunteer.id, "caravan": world.caravan_a,
              "join_code": world.join_code(),
              "code": certificate_code(volunteer.id, "caravan", world.caravan_a)}
    assert db.session.get(Caravan, world.caravan_a).status == "active"
    wrong = []
    for template, allowed in PAGES:
        url = template.format(**values)
        for role, headers in world.headers.items():
            status = client.get(url, headers=headers).status_code
            location = ""
            if status >= 500:
                wrong.append(f"{url} as {role}: {status}")
            elif role in allowed and status != 200:
                wrong.append(f"{url} as {role}: {status}, expected 200")
            elif role not in allowed and status not in (401, 403):
                location = client.get(url, headers=headers).headers.get("Location", "")
                if not (status in (302, 303) and "/login" in location):
                    wrong.append(f"{url} as {role}: {status}, expected a refusal")
    assert not wrong, "\n".join(wrong)

"""Record the API's answers to a fixed list of requests on the demo season, to compare two commits.

    .venv/bin/python tests/tools/answers.py record CHECKOUT OUT.json   # one checkout of fieldsvc
    .venv/bin/python tests/tools/answers.py diff BEFORE.json AFTER.json

`record` builds a fresh SQLite database the way `make run` does (`flask db upgrade`, `flask setup`,
run in CHECKOUT with CHECKOUT's code), imports the same shipped facility lists where that commit's
`setup` does not, sets every demo caravan to the state the first demo loader gave them (all closed,
two days after their last day), builds the protected release where the commit has one, then asks
as admin, coordinator, planner and anonymous caller the requests of `REQUESTS` through Flask's
test client, and writes each answer's status, content type and JSON (or the text's first
characters). Values that change from run to run (tokens, join codes, times of the run itself) are
masked. Run both records on the same day: the demo season is dated from today.

`diff` prints, request by request, the JSON paths whose values differ. docs/contract-answers.md
classifies the differences between 21dd032 (before issue 8) and the branch that closed it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[2]
FACILITY_FILES = [HERE / "fieldsvc/areas/data/moh-hospitals-2024.csv",
                  HERE / "fieldsvc/areas/data/moh-primary-care-2024.csv"]
# Current passwords first, then those of the demo before the password policy.
PASSWORDS = {"admin": ["atlas-caravanes-26", "demo-admin"],
             "coordinator": ["oasis-de-zagora-26", "demo-coordinator"],
             "planner": ["wahat-al-khair-26", "demo-planner"]}
SUBMISSION_ID = "6f1c2a9e-0b7d-4d2e-9a51-3c8e2f0a2026"
VOLATILE_KEYS = {"token", "expires_at", "join_code", "join_url", "etag"}
INDEX = re.compile(r"\[\d+\]")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _lines(count: int) -> list[dict[str, Any]]:
    return [{"measure": "consultations", "sex": "F", "age_band": "25-49", "condition": None,
             "count": count},
            {"measure": "consultations", "sex": "M", "age_band": "5-14", "condition": "X",
             "count": 7}]


def requests(today: dt.date) -> list[tuple[str, str, str, str, Any]]:
    """(name, caller, method, path, JSON body or raw (content type, bytes)). {caravan},
    {site}, {join} and {sub} are filled in from earlier answers."""
    day = today.isoformat()
    last_year = (today - dt.timedelta(days=365)).isoformat()
    reads = [
        ("me", "coordinator", "GET", "/api/v1/me", None),
        ("areas regions", "anonymous", "GET", "/api/v1/areas?level=region", None),
        ("areas provinces of 08", "anonymous", "GET", "/api/v1/areas?level=province&parent=08",
         None),
        ("area 08.587.01.13", "anonymous", "GET", "/api/v1/areas/08.587.01.13", None),
        ("area unknown", "anonymous", "GET", "/api/v1/areas/99.999.99.99", None),
        ("catalog", "anonymous", "GET", "/api/v1/catalog", None),
        ("organizations", "admin", "GET", "/api/v1/organizations", None),
        ("users", "admin", "GET", "/api/v1/users", None),
        ("caravans admin", "admin", "GET", "/api/v1/caravans", None),
        ("caravans coordinator region 08", "coordinator", "GET", "/api/v1/caravans?region=08",
         None),
        ("caravans planner", "planner", "GET", "/api/v1/caravans", None),
        ("caravans bad status", "admin", "GET", "/api/v1/caravans?status=nope", None),
        ("caravan 2", "coordinator", "GET", "/api/v1/caravans/2", None),
        ("caravan 7 outside regions", "coordinator", "GET", "/api/v1/caravans/7", None),
        ("caravan 99999", "admin", "GET", "/api/v1/caravans/99999", None),
        ("enrollments of 2", "coordinator", "GET", "/api/v1/caravans/2/enrollments", None),
        ("completeness 2", "coordinator", "GET", "/api/v1/caravans/2/completeness", None),
        ("completeness 12", "admin", "GET", "/api/v1/caravans/12/completeness", None),
        ("submissions admin", "admin", "GET", "/api/v1/submissions", None),
        ("submissions caravan 2", "coordinator", "GET", "/api/v1/submissions?caravan_id=2", None),
        ("submissions flagged", "coordinator", "GET", "/api/v1/submissions?status=flagged", None),
        ("submissions planner", "planner", "GET", "/api/v1/submissions", None),
        ("submissions limit 0", "admin", "GET", "/api/v1/submissions?limit=0", None),
        ("summary by region", "admin", "GET", "/api/v1/summary?by=region", None),
        ("summary specialty,sex", "admin", "GET", "/api/v1/summary?by=specialty,sex", None),
        ("summary province region 08", "coordinator", "GET",
         "/api/v1/summary?by=province&region=08", None),
        ("summary month OPH", "coordinator", "GET",
         "/api/v1/summary?by=month&region=08&specialty=OPH", None),
        ("summary age_band glasses", "admin", "GET",
         "/api/v1/summary?by=age_band&measure=glasses", None),
        ("summary caravan approved", "admin", "GET",
         "/api/v1/summary?by=caravan&status=approved", None),
        ("summary commune from", "admin", "GET",
         f"/api/v1/summary?by=commune&from={last_year}", None),
        ("summary region,specialty quarter", "admin", "GET",
         "/api/v1/summary?by=region,specialty,quarter", None),
        ("summary planner region,specialty", "planner", "GET",
         "/api/v1/summary?by=region,specialty", None),
        ("summary planner quarter 08", "planner", "GET",
         "/api/v1/summary?by=specialty,quarter&region=08", None),
        ("summary planner own org", "planner", "GET",
         "/api/v1/summary?by=caravan&organization=1", None),
        ("summary anonymous", "anonymous", "GET", "/api/v1/summary?by=region", None),
        ("summary bad by", "admin", "GET", "/api/v1/summary?by=colour", None),
        ("summary bad region", "admin", "GET", "/api/v1/summary?by=region&region=8x", None),
        ("summary from after to", "admin", "GET",
         "/api/v1/summary?by=region&from=2026-06-01&to=2026-01-01", None),
        ("summary bad measure", "admin", "GET", "/api/v1/summary?measure=smiles", None),
        ("public summary", "anonymous", "GET", "/api/v1/public/summary", None),
        ("public summary glasses", "anonymous", "GET", "/api/v1/public/summary?measure=glasses",
         None),
        ("needs OPH", "planner", "GET", "/api/v1/needs?specialty=OPH&limit=10", None),
        ("needs GEN province 08", "coordinator", "GET",
         "/api/v1/needs?specialty=GEN&level=province&region=08", None),
        ("needs weights", "admin", "GET",
         "/api/v1/needs?specialty=PED&weights=demand:1,unmet:2,access:1&limit=5", None),
        ("needs missing specialty", "planner", "GET", "/api/v1/needs", None),
        ("needs bad weights", "planner", "GET", "/api/v1/needs?specialty=GEN&weights=x:y", None),
        ("plan decimal base", "planner", "POST", "/api/v1/plans",
         {"base": "30.33, -5.84", "radius_km": 80, "days": 2, "team": {"GEN": 2, "OPH": 1}}),
        ("plan DMS base", "planner", "POST", "/api/v1/plans",
         {"base": "30 19 48 N, 5 50 24 W", "radius_km": 80, "days": 2, "team": {"GEN": 2}}),
        ("plan outside Morocco", "planner", "POST", "/api/v1/plans",
         {"base": "48.85, 2.35", "radius_km": 80, "days": 2, "team": {"GEN": 2}}),
        ("plan missing team", "planner", "POST", "/api/v1/plans",
         {"base": "30.33, -5.84", "radius_km": 80, "days": 2}),
        ("audit coordinator", "coordinator", "GET", "/api/v1/audit?limit=5", None),
    ]
    writes = [
        ("caravan create text/plain", "coordinator", "POST", "/api/v1/caravans",
         ("text/plain", b"title=x")),
        ("caravan create invalid", "coordinator", "POST", "/api/v1/caravans",
         {"title": "x", "commune": "nope", "first_day": day, "last_day": day,
          "specialties": ["ZZZ"]}),
        ("caravan create outside regions", "coordinator", "POST", "/api/v1/caravans",
         {"title": "Caravane de Figuig bis", "organizers": [2], "commune": "02.251.01.03",
          "first_day": day, "last_day": day, "specialties": ["GEN"]}),
        ("caravan create", "coordinator", "POST", "/api/v1/caravans",
         {"title": "Caravane de contrôle", "organizers": [1], "commune": "08.587.01.13",
          "sites": [{"name": "École de contrôle", "location": "30 19 48 N, 5 50 24 W"}],
          "first_day": day, "last_day": (today + dt.timedelta(days=1)).isoformat(),
          "specialties": ["GEN", "OPH"]}),
        ("caravan activate", "coordinator", "PATCH", "/api/v1/caravans/{caravan}",
         {"status": "active"}),
        ("enroll bad code", "anonymous", "POST", "/api/v1/enrollments",
         {"join_code": "ZZZZ-ZZZZ", "display_name": "Dr Test", "specialty": "GEN"}),
        ("enroll", "anonymous", "POST", "/api/v1/enrollments",
         {"join_code": "{join}", "display_name": "Dr Contrôle", "specialty": "GEN"}),
        ("submit", "volunteer", "POST", "/api/v1/submissions",
         {"id": SUBMISSION_ID, "caravan_id": "{caravan}", "site_id": "{site}", "day": day,
          "specialty": "GEN", "lines": _lines(40)}),
        ("submit again (retry)", "volunteer", "POST", "/api/v1/submissions",
         {"id": SUBMISSION_ID, "caravan_id": "{caravan}", "site_id": "{site}", "day": day,
          "specialty": "GEN", "lines": _lines(40)}),
        ("submit text/plain", "volunteer", "POST", "/api/v1/submissions",
         ("text/plain", b"{}")),
        ("submit outside caravan days", "volunteer", "POST", "/api/v1/submissions",
         {"id": "6f1c2a9e-0b7d-4d2e-9a51-3c8e2f0a2027", "caravan_id": "{caravan}",
          "site_id": "{site}", "day": last_year, "specialty": "GEN", "lines": _lines(3)}),
        ("submit unknown measure", "volunteer", "POST", "/api/v1/submissions",
         {"id": "6f1c2a9e-0b7d-4d2e-9a51-3c8e2f0a2028", "caravan_id": "{caravan}",
          "site_id": "{site}", "day": day, "specialty": "GEN",
          "lines": [{"measure": "smiles", "sex": "F", "age_band": "25-49", "count": 1}]}),
        ("submission read", "coordinator", "GET", f"/api/v1/submissions/{SUBMISSION_ID}", None),
        ("amend", "volunteer", "PUT", f"/api/v1/submissions/{SUBMISSION_ID}",
         {"caravan_id": "{caravan}", "site_id": "{site}", "day": day, "specialty": "GEN",
          "lines": _lines(41), "note": "corrigé"}),
        ("review naming the version", "coordinator", "POST",
         f"/api/v1/submissions/{SUBMISSION_ID}/review", {"status": "approved", "version": 2}),
        ("review without version", "coordinator", "POST",
         f"/api/v1/submissions/{SUBMISSION_ID}/review", {"status": "approved"}),
        ("review bad status", "coordinator", "POST",
         f"/api/v1/submissions/{SUBMISSION_ID}/review", {"status": "maybe", "version": 2}),
        ("completeness new caravan", "coordinator", "GET",
         "/api/v1/caravans/{caravan}/completeness", None),
        ("summary after writes", "admin", "GET",
         "/api/v1/summary?by=caravan,specialty&region=08", None),
    ]
    return reads + writes


def _mask(value: Any, now: dt.datetime) -> Any:
    if isinstance(value, dict):
        return {key: "<varies>" if key in VOLATILE_KEYS and not isinstance(item, list)
                else _mask(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, now) for item in value]
    if isinstance(value, str) and TIMESTAMP.match(value):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        if abs(moment - now) < dt.timedelta(days=2):
            return "<now>"
    return value


def _flask(checkout: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=checkout,
                          env=env, capture_output=True, text=True, check=True)
    return done.stdout


def record(checkout: Path, out: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="answers-"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/answers.sqlite3",
           "PUBLIC_BASE_URL": "http://127.0.0.1:8000", "ROLLUP_FOLD_SECONDS": "0",
           "PYTHONPATH": str(checkout), "FIELDSVC_ENV": "development"}
    _flask(checkout, env, "db", "upgrade")
    _flask(checkout, env, "setup")
    os.environ.update(env)
    os.chdir(checkout)
    sys.path.insert(0, str(checkout))
    from sqlalchemy import func, select, text

    from fieldsvc import create_app
    from fieldsvc.extensions import db

    app = create_app()
    with app.app_context():
        from fieldsvc.areas.models import Facility

        if not db.session.scalar(select(func.count()).select_from(Facility)):
            db.session.remove()
            _flask(checkout, env, "facilities", "import", *map(str, FACILITY_FILES))
        # The same demo season in both: every caravan closed two days after its last day.
        db.session.execute(text(
            "UPDATE caravan SET status = 'closed',"
            " closed_at = date(last_day, '+2 days') || ' 18:00:00.000000' WHERE status <> 'closed'"))
        db.session.commit()
    if "release" in _flask(checkout, env, "--help"):
        _flask(checkout, env, "release", "build")
    now = dt.datetime.now(dt.UTC)
    client = app.test_client()
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for user, candidates in PASSWORDS.items():
        for password in candidates:
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            answer = client.post("/api/v1/tokens", headers={"Authorization": f"Basic {basic}"})
            if answer.status_code in (200, 201):
                headers[user] = {"Authorization": "Bearer " + answer.get_json()["token"]}
                break
        else:
            raise SystemExit(f"cannot log in as {user}")
    found: dict[str, str] = {}
    answers = []
    for name, caller, method, path, body in requests(now.date()):
        for key, value in found.items():
            path = path.replace("{" + key + "}", value)
        options: dict[str, Any] = {"headers": {"Accept-Language": "en", **headers.get(caller, {})}}
        if isinstance(body, tuple):
            options["headers"]["Content-Type"] = body[0]
            options["data"] = body[1]
        elif body is not None:
            filled = json.dumps(body)
            for key, value in found.items():
                filled = filled.replace(f'"{{{key}}}"', value if value.isdigit()
                                        else json.dumps(value))
            options["json"] = json.loads(filled)
        response = client.open(path, method=method, **options)
        content_type = response.headers.get("Content-Type", "")
        payload: Any = response.get_json(silent=True)
        if payload is None:
            payload = response.get_data(as_text=True)[:300]
        if name == "caravan create" and response.status_code == 201:
            found["caravan"] = str(payload["id"])
            found["join"] = payload["join_code"]
            found["site"] = str(payload["sites"][0]["id"])
        if name == "enroll" and response.status_code in (200, 201):
            headers["volunteer"] = {"Authorization": "Bearer " + payload["token"]}
        answers.append({"name": name, "caller": caller, "request": f"{method} {path}",
                        "status": response.status_code, "content_type": content_type,
                        "body": _mask(payload, now)})
    out.write_text(json.dumps(answers, ensure_ascii=False, indent=1, sort_keys=True))
    print(f"{len(answers)} answers written to {out} (database {folder})")


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, list) and isinstance(after, dict) and "items" in after:
        return ([f"{path or '.'}: list -> page of {sorted(after)}"]
                + _differences(before, after["items"], f"{path}.items"))
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            if key not in after:
                found.append(f"{path}.{key}: removed")
            elif key not in before:
                shown = json.dumps(after[key], ensure_ascii=False)[:100]
                found.append(f"{path}.{key}: added = {shown}")
            else:
                found += _differences(before[key], after[key], f"{path}.{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (one, other) in enumerate(zip(before, after, strict=True)):
            found += _differences(one, other, f"{path}[{index}]")
        return found
    if before != after:
        show = (json.dumps(before, ensure_ascii=False)[:100],
                json.dumps(after, ensure_ascii=False)[:100])
        return [f"{path or '.'}: {show[0]} -> {show[1]}"]
    return []


def _grouped(lines: list[str]) -> list[str]:
    """One line per path with list indexes wildcarded: how many times, and the first example."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        where, _, what = line.partition(": ")
        kind = what.split(" ", 1)[0] if what.startswith(("added", "removed")) else "changed"
        groups.setdefault(f"{INDEX.sub('[*]', where)} {kind}", []).append(line)
    return [f"{key} ×{len(found)}: {found[0]}" if len(found) > 1 else found[0]
            for key, found in groups.items()]


def diff(before_file: Path, after_file: Path) -> int:
    before = {item["name"]: item for item in json.loads(before_file.read_text())}
    after = {item["name"]: item for item in json.loads(after_file.read_text())}
    changed = 0
    for name in after:
        one, other = before.get(name), after[name]
        if one is None:
            print(f"## {name}: only after")
            continue
        lines = _differences({k: one[k] for k in ("status", "content_type", "body")},
                             {k: other[k] for k in ("status", "content_type", "body")})
        if lines:
            changed += 1
            print(f"## {name} ({other['caller']}: {other['request']})")
            for line in _grouped(lines):
                print("   " + line)
    print(f"{changed} of {len(after)} answers differ")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "record":
        record(Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        sys.exit(diff(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)

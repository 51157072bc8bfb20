"""Every problem+json answer speaks the caller's language (Accept-Language: fr, ar, en)."""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path

from fieldsvc.errors import TITLES
from tests.factories import auth, make_areas, make_caravan, make_enrollment, make_user

ARABIC = re.compile("[\u0600-\u06ff]")


def _arabic(response) -> None:
    body = response.json
    assert response.content_type == "application/problem+json"
    for part in ("title", "detail"):
        assert ARABIC.search(body[part]), (part, body)
        assert not re.search(r"\b(the|is|not|your|Validation|Forbidden|Not found)\b", body[part]), body


def test_problems_answer_in_the_callers_language(app, client, db):
    make_areas()
    caravan = make_caravan()
    outsider = auth(make_user("coordinator", regions=["07"]))
    ar = {**outsider, "Accept-Language": "ar"}

    response = client.post("/api/v1/caravans", headers=ar, data="x", content_type="text/plain")
    assert response.status_code == 415
    _arabic(response)
    response = client.get("/api/v1/no-such-thing", headers=ar)
    assert response.status_code == 404
    _arabic(response)
    response = client.get(f"/api/v1/caravans/{caravan.id}/qr.svg", headers=ar)
    assert response.status_code == 403
    _arabic(response)
    response = client.get(f"/api/v1/caravans/{caravan.id}/completeness", headers=ar)
    assert response.status_code == 403
    _arabic(response)
    response = client.post("/api/v1/caravans", headers=ar, json={
        "title": "Caravane", "commune": "07.351.99.99", "first_day": "2026-11-27",
        "last_day": "2026-11-28", "specialties": ["OPH"]})
    assert response.status_code == 422
    _arabic(response)
    assert ARABIC.search(response.json["errors"]["commune"][0])
    # marshmallow's own messages too: a missing field, a wrong type, a value out of range.
    response = client.post("/api/v1/caravans", headers=ar, json={"title": "Caravane",
                                                                 "specialties": "OPH"})
    assert response.status_code == 422
    _arabic(response)
    errors = response.json["errors"]
    assert {"commune", "first_day", "specialties"} <= set(errors)
    assert all(ARABIC.search(m) for messages in errors.values() for m in messages), errors
    response = client.get("/api/v1/areas?limit=abc", headers=ar)
    assert response.status_code == 422
    assert all(ARABIC.search(m) for m in response.json["errors"]["limit"]), response.json
    response = client.get("/api/v1/areas?limit=100000",
                          headers={**outsider, "Accept-Language": "fr"})
    assert response.status_code == 422
    assert "supérieur ou égal à 1" in response.json["errors"]["limit"][0], response.json

    # The same refusal in French and in English.
    fr = client.get(f"/api/v1/caravans/{caravan.id}/qr.svg", headers={**outsider, "Accept-Language": "fr"})
    assert fr.json["title"] == "Interdit" and "hors de vos régions" in fr.json["detail"]
    en = client.get(f"/api/v1/caravans/{caravan.id}/qr.svg", headers={**outsider, "Accept-Language": "en"})
    assert en.json["title"] == "Forbidden" and "outside your regions" in en.json["detail"]


def test_a_revoked_staff_token_gets_the_staffs_wording(app, client, db):
    make_areas()
    caravan = make_caravan()
    _, device = make_enrollment(caravan)
    header = auth(make_user("coordinator", regions=["08"]))
    assert client.get("/api/v1/me", headers=header).status_code == 200
    assert client.delete("/api/v1/tokens", headers=header).status_code == 204
    response = client.get("/api/v1/me", headers={**header, "Accept-Language": "en"})
    assert response.status_code == 401
    assert "staff token is no longer valid" in response.json["detail"]
    assert "POST /api/v1/tokens" in response.json["detail"]
    assert "join" not in response.json["detail"].lower()
    response = client.get("/api/v1/me", headers={**header, "Accept-Language": "ar"})
    _arabic(response)
    # A device token the server no longer knows: the volunteers' wording, to join again.
    lost = {"Authorization": device["Authorization"] + "x", "Accept-Language": "fr"}
    response = client.get(f"/api/v1/caravans/{caravan.id}", headers=lost)
    assert response.status_code == 401
    assert "rejoignez" in response.json["detail"].lower()


def test_summary_refusals_answer_in_the_callers_language(client, db):
    make_areas()
    planner = auth(make_user("planner", organization="Wahat Al-Khair"))
    admin = auth(make_user("admin"))
    db.session.commit()
    for header, query in ((planner, "by=region,day"), (planner, "by=region&status=approved"),
                          (admin, "by=region,colour"), (admin, "specialty=XYZ")):
        arabic = client.get(f"/api/v1/summary?{query}",
                            headers={**header, "Accept-Language": "ar"})
        assert arabic.status_code == 422, (query, arabic.json)
        _arabic(arabic)
        french = client.get(f"/api/v1/summary?{query}",
                            headers={**header, "Accept-Language": "fr"}).json["detail"]
        english = client.get(f"/api/v1/summary?{query}",
                             headers={**header, "Accept-Language": "en"}).json["detail"]
        assert french != english, query


# Every message an API caller can be refused with, found in the source rather than listed by hand:
# the detail of each error raised or problem rendered, each field message in `errors={...}`,
# each marshmallow ValidationError and each validator's `error=`. Each must go through gettext
# (tests/phone/test_translations.py then holds its fr and ar msgstr filled). errors.py is the
# renderer itself (werkzeug's own descriptions, DomainError.detail passed through) and demo.py
# speaks only to the operator's terminal.
SOURCE = Path(__file__).resolve().parents[1] / "fieldsvc"
NOT_CHECKED = {"errors.py", "demo.py", "cli.py"}
TRANSLATORS = {"_", "_l", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext"}
# name → index of the argument that carries the message (keyword `detail`/`description` too).
ERROR_CALLS = {"DomainError": 0, "ValidationFailed": 0, "NotFound": 0, "Conflict": 0,
               "Unauthorized": 0, "Forbidden": 0, "TooManyRequests": 0, "ValidationError": 0,
               "problem": 2, "abort": 1}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8")))
            for path in sorted(SOURCE.rglob("*.py"))
            if path.name not in NOT_CHECKED and "migrations" not in path.parts]


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return node
    return None


class _Checker:
    def __init__(self) -> None:
        self.modules = _modules()
        self.calls = dict(ERROR_CALLS)
        self.functions: dict[str, list[ast.FunctionDef]] = {}
        for _path, tree in self.modules:
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    self.functions.setdefault(node.name, []).append(node)
                # Subclasses of the errors above are errors too (PdfUnavailable, MappingUnusable…).
                if isinstance(node, ast.ClassDef) and any(
                        _name(base) in self.calls for base in node.bases):
                    self.calls[node.name] = 0

    def translated(self, node: ast.AST | None, where: ast.AST, parents: dict, seen: set) -> bool:
        if node is None or (isinstance(node, ast.Constant) and node.value is None):
            return True  # no message of its own: the status's translated default is used
        if isinstance(node, ast.Call):
            called = _name(node.func)
            if called in TRANSLATORS:
                return True
            if called == "str" and node.args:
                return self.translated(node.args[0], where, parents, seen)
            if called in self.functions and called not in seen:  # a helper that words it
                return all(self.translated(ret.value, ret, self._parents_of(ret), seen | {called})
                           for function in self.functions[called]
                           for ret in ast.walk(function) if isinstance(ret, ast.Return))
            return False
        if isinstance(node, ast.List):  # filled by translated appends further down
            return all(self.translated(item, where, parents, seen) for item in node.elts)
        if isinstance(node, ast.ListComp):
            return self.translated(node.elt, where, parents, seen)
        if isinstance(node, ast.BinOp):  # "Some fields are invalid: " + the fields' messages
            return self.translated(node.left, where, parents, seen)
        if isinstance(node, ast.IfExp):
            return all(self.translated(part, where, parents, seen)
                       for part in (node.body, node.orelse))
        if isinstance(node, ast.Name):
            function = _enclosing_function(where, parents)
            if function is None:
                return False
            values = [assign.value for assign in ast.walk(function)
                      if isinstance(assign, ast.Assign) and any(
                          isinstance(target, ast.Name) and target.id == node.id
                          for target in assign.targets)
                      or isinstance(assign, ast.AnnAssign) and assign.value is not None
                      and _name(assign.target) == node.id]
            # A list of messages: what is appended to it too.
            values += [call.args[0] for call in ast.walk(function)
                       if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                       and call.func.attr == "append" and _name(call.func.value) == node.id
                       and call.args]
            if values:
                return all(self.translated(value, value, parents, seen) for value in values)
            return node.id in {arg.arg for arg in function.args.args + function.args.kwonlyargs}
        return False

    def _parents_of(self, node: ast.AST) -> dict:
        for _path, tree in self.modules:
            parents = _parents(tree)
            if node in parents:
                return parents
        return {}

    def untranslated(self) -> list[str]:
        found = []
        for path, tree in self.modules:
            parents = _parents(tree)
            where = path.relative_to(SOURCE.parent)
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name in self.calls:
                    for statement in node.body:  # an error class's own title
                        if isinstance(statement, ast.Assign) and any(
                                _name(target) == "title" for target in statement.targets) \
                                and getattr(statement.value, "value", None) not in TITLES:
                            found.append(f"{where}:{statement.lineno} title: "
                                         f"{ast.unparse(statement.value)}")
                if not isinstance(node, ast.Call):
                    continue
                called = _name(node.func)
                if called in self.calls:
                    index = self.calls[called]
                    keywords = {k.arg: k.value for k in node.keywords}
                    message = (node.args[index] if len(node.args) > index
                               else keywords.get("detail", keywords.get("description")))
                    if called == "ValidationError" and isinstance(message, ast.Dict):
                        message = None  # {field: [messages]}: the lists are checked below
                    if not self.translated(message, node, parents, set()):
                        found.append(f"{where}:{node.lineno} {ast.unparse(node)[:90]}")
                    self._check_parameter(message, node, parents, called)
                for keyword in node.keywords:
                    if keyword.arg == "title" and called in self.calls and not (
                            isinstance(keyword.value, ast.Constant) and keyword.value.value in TITLES):
                        found.append(f"{where}:{node.lineno} title: {ast.unparse(keyword.value)}")
                    if keyword.arg == "errors" and isinstance(keyword.value, ast.Dict | ast.DictComp):
                        values = (keyword.value.values if isinstance(keyword.value, ast.Dict)
                                  else [keyword.value.value])
                        for value in values:
                            items = value.elts if isinstance(value, ast.List) else [value]
                            for item in items:
                                if not self.translated(item, node, parents, set()):
                                    found.append(f"{where}:{node.lineno} errors: "
                                                 f"{ast.unparse(item)[:80]}")
                    if keyword.arg == "error" and isinstance(keyword.value, ast.Constant | ast.BinOp) \
                            and called in {"Regexp", "Range", "OneOf", "Length"}:
                        if not self.translated(keyword.value, node, parents, set()):
                            found.append(f"{where}:{node.lineno} validator: "
                                         f"{ast.unparse(keyword.value)[:80]}")
        return found

    def _check_parameter(self, message: ast.AST | None, node: ast.Call, parents: dict,
                         called: str) -> None:
        """A function that passes its own parameter on as the message is checked at its calls."""
        if not isinstance(message, ast.Name):
            return
        function = _enclosing_function(node, parents)
        if not isinstance(function, ast.FunctionDef):
            return
        names = [arg.arg for arg in function.args.args]
        if message.id in names and function.name not in self.calls:
            self.calls[function.name] = names.index(message.id)
            self.pending = True


def test_every_error_message_goes_through_gettext():
    checker = _Checker()
    checker.pending = True
    while checker.pending:  # wrappers found on one pass are checked at their calls on the next
        checker.pending = False
        found = checker.untranslated()
    assert not found, "\n".join(found)


def test_the_checker_sees_an_untranslated_message(tmp_path):
    """The scan itself can fail: an English literal, in a detail or a field message, is caught."""
    checker = _Checker()
    tree = ast.parse(
        "def refuse(caravan):\n"
        "    message = 'Closed.'\n"
        "    raise ValidationFailed(message, errors={'day': [_('Closed.')]})\n"
        "def other():\n"
        "    raise Conflict(_('Taken.'), errors={'id': ['taken']})\n"
        "def gone():\n"
        "    raise DomainError(_('Gone for good.'), status=410, title='Gone away')\n")
    checker.modules = [(SOURCE / "fake.py", tree)]
    found = checker.untranslated()
    assert [line.split(" ", 1)[0] for line in found] == [
        "fieldsvc/fake.py:3", "fieldsvc/fake.py:5", "fieldsvc/fake.py:7"], found


def test_messages_worded_in_services_and_validators_answer_in_arabic(client, db):
    """A few of those the scan above found in English before: details, field messages, titles."""
    make_areas()
    caravan = make_caravan()
    make_user("admin", username="root")
    coordinator = auth(make_user("coordinator", regions=["08"]))
    ar = {"Accept-Language": "ar"}
    db.session.commit()
    wrong = client.post("/api/v1/tokens", headers={
        **ar, "Authorization": "Basic " + base64.b64encode(b"root:not it at all").decode()})
    assert wrong.status_code == 401
    _arabic(wrong)
    backwards = client.patch(f"/api/v1/caravans/{caravan.id}", headers={**coordinator, **ar},
                             json={"first_day": "2026-11-28", "last_day": "2026-11-27"})
    assert backwards.status_code == 422
    _arabic(backwards)
    assert ARABIC.search(backwards.json["errors"]["last_day"][0])
    unknown = client.get("/api/v1/needs?specialty=XYZ", headers={**coordinator, **ar})
    assert unknown.status_code == 422
    _arabic(unknown)
    assert ARABIC.search(unknown.json["errors"]["specialty"][0])
    joined = client.post("/api/v1/enrollments", headers=ar,
                         json={"join_code": "ZZZZ-ZZZZ", "display_name": "Dr Amina"})
    assert joined.status_code == 404
    assert ARABIC.search(joined.json["errors"]["join_code"][0]), joined.json
    bad_region = client.get("/api/v1/caravans?region=8", headers={**coordinator, **ar})
    assert bad_region.status_code == 422
    assert ARABIC.search(bad_region.json["errors"]["region"][0]), bad_region.json

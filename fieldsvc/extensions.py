"""Flask extensions, created unbound and bound to the app by the factory."""

from flask_babel import Babel
from flask_compress import Compress
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from fieldsvc.db import Model, Session

db = SQLAlchemy(model_class=Model, session_options={"class_": Session})
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()
compress = Compress()


class ProblemApi(Api):
    """flask-smorest Api whose HTTP errors are RFC 9457 problem documents, and say so."""

    def handle_http_exception(self, error):  # type: ignore[override]
        from fieldsvc.errors import problem_from_http_exception

        return problem_from_http_exception(error)

    def _register_responses(self) -> None:
        # flask-smorest describes its errors as {code, status, message} in application/json;
        # ours are problem documents (fieldsvc.errors.problem), in application/problem+json.
        import http

        from flask_smorest.utils import prepare_response

        from fieldsvc.errors import PROBLEM_JSON, ProblemSchema

        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = ProblemSchema
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An RFC 9457 problem document: what went wrong and what to "
                                   "fix, in the caller's language (Accept-Language).",
                    "schema": ProblemSchema}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


api = ProblemApi()

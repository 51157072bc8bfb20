"""Flask extensions, created unbound and bound to the app by the factory."""

from flask_babel import Babel
from flask_compress import Compress
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from fieldsvc.db import Model

db = SQLAlchemy(model_class=Model)
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()
compress = Compress()


class ProblemApi(Api):
    """flask-smorest Api whose HTTP errors are RFC 9457 problem documents."""

    def handle_http_exception(self, error):  # type: ignore[override]
        from fieldsvc.errors import problem_from_http_exception

        return problem_from_http_exception(error)


api = ProblemApi()

"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

SQLite allows one writer at a time, so it is served by one worker with threads (DESIGN.md,
Runtime); PostgreSQL gets several worker processes. Environment variables override:
GUNICORN_BIND, WEB_CONCURRENCY (workers), GUNICORN_THREADS, GUNICORN_TIMEOUT.
"""

import multiprocessing
import os

_database_url = os.environ.get("DATABASE_URL", "")
_postgresql = _database_url.startswith(("postgres://", "postgresql://", "postgresql+"))

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
if _postgresql:
    workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 9)))
    threads = int(os.environ.get("GUNICORN_THREADS", "2"))
else:  # SQLite in the instance folder
    workers = 1
    threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# Behind a TLS-terminating proxy on the same host or network, trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicorn's runtime control socket ($HOME/.gunicorn/gunicorn.ctl) is unused here, and two servers
# of one user (make run next to a benchmark) would fight over it.
control_socket_disable = True


def post_worker_init(worker):  # noqa: ANN001 - gunicorn's hook signature
    """Keep the protected release and the summary rollup fresh from each worker, off the request
    path (folds take turns under a lock)."""
    from fieldsvc.insights.release import start_background_refresh
    from fieldsvc.insights.rollup import start_background_fold

    start_background_refresh(worker.wsgi)
    start_background_fold(worker.wsgi)

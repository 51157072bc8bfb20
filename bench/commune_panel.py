"""The need map's commune panel: one commune's row against the whole ranking it used to build.

    .venv/bin/python -m bench.commune_panel      # SQLite (a temporary file), then PostgreSQL
                                                 # when FIELDSVC_TEST_POSTGRES_URL is set

Same data as ``bench.needs`` (the real areas and a demo-sized season). Clicking a commune on the
map asks ``need_ranking(query, only=code)``: every commune's components and percentiles are still
computed (a rank needs them all), but only that commune's row is built. The baseline, in the same
run, is what the panel did before: the whole ranking with every row, then picking one. Prints both
medians and their ratio, in a request context (rows are built in the caller's language).
"""

from __future__ import annotations

from bench.figures import figure
from bench.needs import _median_seconds, on_each_engine, seasoned_app


def run(url: str, label: str) -> None:
    from fieldsvc.extensions import db
    from fieldsvc.insights.needs import NeedsQuery, need_ranking
    from fieldsvc.security import Principal

    app, source, _ = seasoned_app(url)
    with app.test_request_context("/?lang=fr"):
        admin = Principal(role="admin")
        query = NeedsQuery(specialty="OPH", regions=["08"])
        whole = need_ranking(NeedsQuery(specialty="OPH", regions=["08"], limit=5000), admin)
        code = whole.rows[len(whole.rows) // 2].code

        def before() -> None:
            ranking = need_ranking(NeedsQuery(specialty="OPH", regions=["08"], limit=5000),
                                   admin)
            assert any(row.code == code for row in ranking.rows)

        def now() -> None:
            assert need_ranking(query, admin, only=code).rows[0].code == code

        before()
        now()
        old, new = _median_seconds(before), _median_seconds(now)
    print(f"{label}: {source}, commune {code} of region 08")
    print(f"  whole ranking, then one row (the panel before): {old * 1000:.0f} ms (median of 7)")
    print(f"  one commune's row (the panel now): {new * 1000:.0f} ms")
    print(f"  ratio before / now: {old / new:.1f}")
    figure(f"commune_panel: one commune's row, {label}", f"{new * 1000:.0f} ms",
           baseline=f"whole ranking then one row {old * 1000:.0f} ms", ratio=old / new)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    on_each_engine(run, "commune_panel")


if __name__ == "__main__":
    main()

"""Weight of the needs pages on first load (the map, the ranking, a plan, the summaries).

    .venv/bin/python -m bench.pages_weight

Loads Morocco's 1,503 communes into a temporary SQLite database, logs in as an administrator
(no release needed), and asks each page, as a browser would (Accept-Encoding: gzip), for its HTML,
everything it references and what its script fetches (region outlines); prints the bytes of each
body as sent. Figures to watch, not a target: the libraries (Leaflet, Chart.js) are cached after
the first page.
"""

from __future__ import annotations

import re
import tempfile

from bench.figures import figure

PAGES = (
    "/insights/map?specialty=OPH",  # what the map opens on: all 1,503 communes
    "/insights/map?specialty=OPH&region=08",
    "/insights/needs?specialty=OPH&region=08",
    "/insights/plan?base=Zagora&days=3&radius_km=150&team_OPH=2",
    "/insights/summary?by=specialty",
)
FETCHED = {"/insights/map": ["/insights/regions.geojson"],
           "/insights/plan": ["/insights/regions.geojson"]}


def main() -> None:
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.accounts.services import create_user
    from fieldsvc.areas.services import load_areas
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db

    folder = tempfile.mkdtemp()
    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/b.db"})
    with app.app_context():
        upgrade()
        ensure_catalog()
        load_areas(echo=lambda *_: None)
        create_user("bench-admin", "bench-password", "admin")
        db.session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "bench-admin", "password": "bench-password"})
    headers = {"Accept-Encoding": "gzip", "Accept-Language": "fr"}
    for url in PAGES:
        page = client.get(url, headers=headers)
        if page.status_code == 404:
            print(f"{url}: no such page here, skipped")
            continue
        html = page.get_data()
        if page.headers.get("Content-Encoding") == "gzip":
            import gzip

            html = gzip.decompress(html)
        paths = re.findall(r'(?:src|href)="(/static/[^"]+)"', html.decode())
        paths += FETCHED.get(url.split("?")[0], [])
        rows = [(url, len(page.data))]
        rows += [(path, len(client.get(path, headers=headers).data)) for path in paths]
        total = sum(size for _, size in rows)
        print(f"{url}  (status {page.status_code})")
        for path, size in rows:
            print(f"  {size:>9}  {path}")
        print(f"  first load: {len(rows)} responses, {total} bytes ≈ {total / 1024:.0f} KB; "
              f"the page alone {rows[0][1] / 1024:.0f} KB")
        figure(f"pages: {url}, first load", f"{total / 1024:.0f} KB in {len(rows)} requests")


if __name__ == "__main__":
    main()

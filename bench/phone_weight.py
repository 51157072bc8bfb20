"""Phone form first-load weight (target ≤ 60 KB transferred), without a browser.

    .venv/bin/python -m bench.phone_weight

Asks the app, as a browser would (Accept-Encoding: gzip), for the join page, everything it
references, the service worker and what the service worker caches, and prints the bytes of each
body as sent plus an estimate of the headers. tests/phone/test_browser.py measures the same thing
in Chromium against a real server and prints it.
"""

from __future__ import annotations

import gzip
import re
import tempfile

from bench.figures import figure

HEADERS_ESTIMATE = 400  # status line and response headers (CSP included), per response


def main() -> None:
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.catalog.services import ensure_catalog
    from fieldsvc.extensions import db

    folder = tempfile.mkdtemp()
    app = create_app({"SECRET_KEY": "bench",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/b.db"})
    with app.app_context():
        upgrade()
        ensure_catalog()
        db.session.commit()
    client = app.test_client()
    headers = {"Accept-Encoding": "gzip", "Accept-Language": "fr"}
    page = client.get("/join/K7QX-4MZP", headers=headers)
    html = gzip.decompress(page.data).decode()
    paths = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    sw = client.get("/sw.js", headers=headers)
    sw_text = gzip.decompress(sw.data).decode()
    version = re.search(r"var VERSION = '([0-9a-f]+)'", sw_text).group(1)
    cached = re.search(r"var SHELL = \[(.*?)\]", sw_text, re.S).group(1)
    shell = [p.replace("' + Q", f"?v={version}").rstrip("'")
             for p in re.findall(r"'(/[^']*'(?: \+ Q)?)", cached)]
    languages = re.search(r"var LANGUAGES = '([^']*)'", sw_text).group(1).split()
    shell += [f"/app/i18n/{lang}.json" for lang in languages]
    rows = [("/join/K7QX-4MZP", len(page.data)), ("/sw.js", len(sw.data))]
    for path in paths + ["/app/i18n/fr.json", "/api/v1/catalog"] + shell:
        rows.append((path, len(client.get(path, headers=headers).data)))
    total = sum(size + HEADERS_ESTIMATE for _, size in rows)
    for path, size in rows:
        print(f"{size:>8}  {path}")
    # Counts the service worker's copies of versioned files again (a browser's HTTP cache serves
    # them): an upper bound. The browser test measured about 29 KB.
    print(f"first load, page and service-worker cache fill (upper bound): {len(rows)} responses, "
          f"{total} bytes ≈ {total / 1024:.1f} KB (target ≤ 60 KB) — "
          f"{'OK' if total <= 60 * 1024 else 'OVER BUDGET'}")
    figure("pages: phone form, first load (upper bound)",
           f"{total / 1024:.1f} KB in {len(rows)} requests", target="<= 60 KB transferred",
           meets=total <= 60 * 1024)


if __name__ == "__main__":
    main()

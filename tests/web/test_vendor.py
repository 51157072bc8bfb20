"""Front-end libraries are installed from npm by `make install` and served by fieldsvc itself."""

import pytest

VENDORED = [
    ("vendor/leaflet/leaflet.js", "javascript"),
    ("vendor/leaflet/leaflet.css", "css"),
    ("vendor/leaflet/images/marker-icon.png", "png"),
    ("vendor/chart.umd.min.js", "javascript"),
    ("vendor/axe.min.js", "javascript"),
]


@pytest.mark.parametrize(("path", "kind"), VENDORED)
def test_vendored_library_is_served_from_our_origin(client, path: str, kind: str) -> None:
    response = client.get(f"/static/web/{path}")
    assert response.status_code == 200, f"{path} missing: `make install` copies it from npm"
    assert kind in response.mimetype
    assert len(response.data) > 1000

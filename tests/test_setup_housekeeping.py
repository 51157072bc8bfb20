"""Setting up: join links a phone on the LAN can open, `make translations`, the favicon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fieldsvc.config import load_config, reachable_base_url
from tests.factories import make_areas, make_caravan, make_user

ROOT = Path(__file__).resolve().parent.parent


def test_serving_on_every_interface_gives_join_links_a_lan_address(monkeypatch, tmp_path):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:8080")
    base = load_config(str(tmp_path))["PUBLIC_BASE_URL"]
    assert base.startswith("http://") and base.endswith(":8080")
    assert "0.0.0.0" not in base
    monkeypatch.setattr("fieldsvc.config.lan_address", lambda: "192.168.1.20")
    assert reachable_base_url("0.0.0.0:8080") == "http://192.168.1.20:8080"
    assert reachable_base_url("[::]:8000") == "http://192.168.1.20:8000"
    assert reachable_base_url("127.0.0.1:8000") == "http://127.0.0.1:8000"
    # PUBLIC_BASE_URL (an HTTPS proxy, say) wins.
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://caravanes.example.ma")
    assert load_config(str(tmp_path))["PUBLIC_BASE_URL"] == "https://caravanes.example.ma"


def test_setup_prints_a_join_link_on_the_public_address(app, runner, db, monkeypatch):
    make_areas()
    make_user("admin")
    caravan = make_caravan(join_code="ZAG7K2PQ", status="planned")
    db.session.commit()
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "http://192.168.1.20:8080")
    result = runner.invoke(args=["setup", "--no-demo"])
    assert result.exit_code == 0, result.output
    assert "http://192.168.1.20:8080/join/ZAG7-K2PQ" in result.output
    assert caravan.title in result.output
    assert "HTTPS" in result.output  # phones on plain http cannot work offline


def test_readme_documents_the_lan_command_with_public_base_url():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    at = readme.index("HOST=0.0.0.0 PORT=8080 make run")
    assert "PUBLIC_BASE_URL" in readme[at - 400:at + 600]
    assert "HTTPS" in readme[at - 400:at + 1200]


def test_favicon_is_an_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    body = response.get_data()
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO with one image...
    assert body[22:30] == b"\x89PNG\r\n\x1a\n"  # ...a PNG, as every browser reads


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_translations_changes_nothing_when_nothing_changed(tmp_path):
    # A copy of the sources, so that the run never touches the working tree.
    work = tmp_path / "tree"
    shutil.copytree(ROOT / "fieldsvc", work / "fieldsvc",
                    ignore=shutil.ignore_patterns("vendor", "__pycache__", "*.mo"))
    for name in ("Makefile", "babel.cfg"):
        shutil.copy(ROOT / name, work / name)
    bin_dir = Path(sys.executable).parent
    (work / ".venv").mkdir()
    os.symlink(bin_dir, work / ".venv" / "bin")
    env = {**os.environ, "MAKEFLAGS": ""}

    def run() -> dict[str, bytes]:
        subprocess.run(["make", "-s", "-o", ".venv/bin/activate", "translations"], cwd=work,
                       env=env, check=True, capture_output=True)
        return {str(p): p.read_bytes() for p in (work / "fieldsvc" / "translations").rglob("*.po*")}

    first = run()
    second = run()
    assert first == second
    original = {str(work / p.relative_to(ROOT)): p.read_bytes()
                for p in (ROOT / "fieldsvc" / "translations").rglob("*.po*")}
    assert first == original, "run `make translations` and commit the catalogs"

"""The tallies tests read messages in English."""

import pytest


@pytest.fixture(autouse=True)
def _english(request: pytest.FixtureRequest) -> None:
    if "client" in request.fixturenames:
        request.getfixturevalue("client").environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

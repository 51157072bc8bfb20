import pytest


@pytest.fixture(autouse=True)
def _fresh_release(fresh_release: None) -> None:
    """Insights tests read what they just stored through the release, as if refreshed."""

"""The ``hub`` and ``browser`` fixtures of ``test_dashboard.py``, for the other e2e modules."""

from tests.e2e.test_dashboard import browser, hub  # noqa: F401 - fixtures

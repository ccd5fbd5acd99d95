"""The ingestion tests' helpers serve here too."""

from tests.ingestion.conftest import post  # noqa: F401  (a fixture)

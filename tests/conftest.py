"""Shared fixtures. Service fixtures live in tests/fixtures/ and are registered here."""
from hypothesis import settings

pytest_plugins: list[str] = ["tests.fixtures.broker", "tests.fixtures.clickhouse"]

# Speed is measured in bench/, not asserted in tests: no per-example deadline, which a loaded 2-core
# CI machine would turn into failures unrelated to correctness. A failure prints its reproduction blob.
settings.register_profile("customs-stream", deadline=None, print_blob=True)
settings.load_profile("customs-stream")

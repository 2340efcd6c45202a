"""Shared fixtures. Service fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins: list[str] = ["tests.fixtures.broker", "tests.fixtures.clickhouse"]

"""Shared fixtures: real servers started per test session on free loopback ports."""

pytest_plugins = [
    "tests.fixtures.mosquitto",
    "tests.fixtures.victoria",
    "tests.fixtures.platform",
    "tests.fixtures.postgres",
]

"""This area runs once with queries answered by PostgreSQL and once by MongoDB."""

from tests.support.stores import system  # noqa: F401 - the fixture, parametrised over both read stores

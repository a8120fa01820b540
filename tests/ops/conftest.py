"""Fallback `superuser_dsn` for the ops tests while tests/conftest.py does not provide one.

Defined only when TEST_SUPERUSER_DSN is set. Note that a fixture here overrides a same-named one in
tests/conftest.py for the tests in this folder, so unset the variable (or delete this) once that one exists.
"""

import os

import pytest

if "TEST_SUPERUSER_DSN" in os.environ:

    @pytest.fixture(scope="session")
    def superuser_dsn() -> str:
        """libpq URL to database `postgres` with superuser rights, e.g. postgresql://root@127.0.0.1:5432/postgres."""
        return os.environ["TEST_SUPERUSER_DSN"]

"""The store fixtures (`store`, `engine`, ... on SQLite and Postgres) live in
tests/integration/conftest.py, the schema helpers in tests/support/postgres.py.

Re-exported here because tests/integration/projector/conftest.py still imports them from this
module; new code imports tests.support.postgres."""

from tests.support.postgres import PG_URL, drop_schema, postgres_schema_engine

__all__ = ["PG_URL", "drop_schema", "postgres_schema_engine"]

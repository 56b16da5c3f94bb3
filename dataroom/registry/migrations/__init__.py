"""Alembic migrations of the registry schema (``dataroom db upgrade``); see :mod:`dataroom.registry.schema`."""

# The newest revision in versions/, known without importing Alembic: a process whose database is stamped
# at it starts without Alembic (schema.prepare, the light read of dataroom tables). A new migration sets it;
# tests/registry/test_policy_row.py fails until it equals Alembic's head.
HEAD_REVISION = "0004"

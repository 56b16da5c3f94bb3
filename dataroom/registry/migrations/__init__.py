"""Alembic migrations of the registry schema (``dataroom db upgrade``); see :mod:`dataroom.registry.schema`."""

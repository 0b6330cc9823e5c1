"""Migration operations for what only PostgreSQL has: trigram indexes for text search.

SQLite (the demo) runs the same migrations and skips these: its searches scan, which is quick at a
demo's size. The indexes are not declared in the models' ``Meta``, so a later migration that
rebuilds a table on SQLite never tries to make one there.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


class RunSQLOn(migrations.RunSQL):
    """SQL that runs on one database vendor only (``vendor``, as Django's connections name it)."""

    vendor = ""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class RunSQLOnPostgreSQL(RunSQLOn):
    vendor = "postgresql"


class RunSQLOnSQLite(RunSQLOn):
    """SQL in SQLite's dialect, for a rule the database keeps on both (a trigger written twice)."""

    vendor = "sqlite"


def trigram_index(table: str, column: str) -> RunSQLOnPostgreSQL:
    """A GIN trigram index on ``UPPER(column)``: what Django's ``icontains`` compares on PostgreSQL
    (``UPPER(column::text) LIKE UPPER('%term%')``), so a search for any part of a value uses it."""
    name = f"{table}_{column}_trgm"[:63]
    return RunSQLOnPostgreSQL(
        sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ((UPPER("{column}")) gin_trgm_ops)',
        reverse_sql=f'DROP INDEX IF EXISTS "{name}"',
    )

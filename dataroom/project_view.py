"""What a project may see, table by table and column by column, as a document for people.

The catalog decides visibility (:func:`~dataroom.catalog.visible_columns`,
:func:`~dataroom.catalog.withheld_columns`); this only lays it out, without the query pipeline,
so that ``dataroom tables`` starts without the engine or the policy compiler.
"""

from __future__ import annotations

from typing import Any

from dataroom.catalog import Catalog, Project, visible_columns, withheld_columns


def describe_tables(catalog: Catalog, project: Project) -> dict[str, Any]:
    """``{"project", "multi_tenant", "tables": [{"table", "tenant", "description", "columns": [...]}]}``."""
    tables = []
    for table in catalog.project_tables(project):
        visible = set(visible_columns(table, project))
        withheld = {w.column: w.reason for w in withheld_columns(table, project)}
        tables.append(
            {
                "table": table.name,
                "tenant": table.tenant,
                "description": table.description,
                "columns": [
                    {"name": c, "classification": cls.value, "visible": c in visible, "reason": withheld.get(c)}
                    for c, cls in table.columns.items()
                ],
            }
        )
    return {"project": project.id, "multi_tenant": project.multi_tenant, "tables": tables}

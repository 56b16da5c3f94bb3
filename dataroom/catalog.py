"""The catalog: a declarative TOML file of tenants, tables, column classifications, users and projects.

It is the one place that says what data exists, whose it is and how sensitive each column is.
Anything the catalog does not classify is treated as PII (fail closed). See ``docs/catalog.md``.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Classification(str, Enum):
    """Column sensitivity, least to most sensitive."""

    PUBLIC = "public"
    INTERNAL = "internal"
    QUASI_IDENTIFIER = "quasi_identifier"
    PII = "pii"


DEFAULT_COLUMN_CLASSES = (Classification.PUBLIC, Classification.INTERNAL, Classification.QUASI_IDENTIFIER)


class CatalogError(ValueError):
    """The catalog file is missing or invalid; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tenant(_Strict):
    name: str = ""


class Table(_Strict):
    """A Parquet table: owned by one tenant, or shared reference data when ``tenant`` is empty."""

    name: str = ""  # filled from the TOML key, e.g. "acme.findings"
    tenant: str | None = None
    location: str
    description: str = ""
    columns: dict[str, Classification]
    # A key: columns whose values are unique in the table (checked when its visible copy is built).
    # A join on it cannot repeat the other side's rows, so output-policy rewrites count rows cheaply.
    unique: list[str] = Field(default_factory=list)

    @field_validator("columns", mode="before")
    @classmethod
    def _lower_names(cls, value: dict) -> dict:
        return {str(k).lower(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _key_in_columns(self) -> "Table":
        unknown = [c for c in self.unique if c.lower() not in self.columns]
        if unknown:
            raise ValueError(f"unique names column(s) {', '.join(unknown)} that the table does not classify")
        object.__setattr__(self, "unique", [c.lower() for c in self.unique])
        return self

    @property
    def schema_name(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def is_remote(self) -> bool:
        return self.location.startswith("s3://")

    def classification(self, column: str) -> Classification:
        """A column's class; anything unclassified is PII."""
        return self.columns.get(column.lower(), Classification.PII)


ENGINES = ("duckdb", "spark")  # where a project's queries can run (dataroom/engines/)
SERVICE_GROUP = "services"  # catalog users in this group are service principals (the model monitor), not people


class User(_Strict):
    name: str = ""
    groups: list[str] = Field(default_factory=list)
    email: str = ""

    @property
    def is_service_principal(self) -> bool:
        """Service principals query through the pipeline in-process; they never log in to the hub."""
        return SERVICE_GROUP in self.groups


class Project(_Strict):
    """An approved scope of exploration: who, which tenants and tables, which column classes, until when."""

    id: str = ""
    description: str = ""
    members: list[str]
    tenants: list[str]
    tables: list[str]
    multi_tenant: bool = False
    column_classes: list[Classification] = Field(default_factory=lambda: list(DEFAULT_COLUMN_CLASSES))
    expires: dt.date
    status: str = "approved"
    # Aggregation constraint on results (dataroom/outputs/aggregation.py): {min_rows, min_tenants}
    # or {enabled = false}; unset means the default, on for multi-tenant projects only.
    output_policy: dict[str, Any] | None = None
    # Where its queries run (dataroom/engines/base.py): duckdb or spark; unset means the
    # deployment's default_engine. Approved with the scope.
    engine: Literal["duckdb", "spark"] | None = None

    def visible_classes(self) -> set[Classification]:
        """Column classes a session may see: PII never; quasi-identifiers never across tenants."""
        classes = set(self.column_classes) - {Classification.PII}
        if self.multi_tenant:
            classes.discard(Classification.QUASI_IDENTIFIER)
        return classes

    def is_expired(self, today: dt.date | None = None) -> bool:
        return (today or dt.date.today()) > self.expires


class Catalog(_Strict):
    tenants: dict[str, Tenant]
    tables: dict[str, Table]
    users: dict[str, User] = Field(default_factory=dict)
    projects: dict[str, Project] = Field(default_factory=dict)
    path: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: dict) -> dict:
        data = dict(data)
        for section, key in (("tables", "name"), ("users", "name"), ("projects", "id")):
            entries = data.get(section) or {}
            data[section] = {
                (k.lower() if section == "tables" else k): {**v, key: (k.lower() if section == "tables" else k)}
                for k, v in entries.items()
            }
        return data

    @model_validator(mode="after")
    def _check_references(self) -> "Catalog":
        problems = []
        for table in self.tables.values():
            if table.name.count(".") != 1:
                problems.append(f"table {table.name!r} must be named <schema>.<table>")
            if table.tenant is not None and table.tenant not in self.tenants:
                problems.append(f"table {table.name} names unknown tenant {table.tenant!r}")
        for project in self.projects.values():
            for t in project.tables:
                if t.lower() not in self.tables:
                    problems.append(f"project {project.id} names unknown table {t!r}")
            for t in project.tenants:
                if t not in self.tenants:
                    problems.append(f"project {project.id} names unknown tenant {t!r}")
            for m in project.members:
                if self.users and m not in self.users:
                    problems.append(f"project {project.id} names unknown user {m!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def table(self, name: str) -> Table | None:
        return self.tables.get(name.lower())

    def resolve_location(self, table: Table) -> str:
        """Absolute local path or ``s3://`` URL; relative paths are relative to the catalog file."""
        if table.is_remote or self.path is None:
            return table.location
        return str((self.path.parent / table.location).resolve())

    def project_tables(self, project: Project) -> list[Table]:
        return [self.tables[t.lower()] for t in project.tables]


@dataclass(frozen=True)
class WithheldColumn:
    """A column of a project's table that the project may not see, and why (shown to the user)."""

    table: str
    column: str
    classification: str
    reason: str


def withheld_reason(classification: Classification, project: Project) -> str:
    if classification is Classification.PII:
        return "PII is never visible in the data room"
    if classification is Classification.QUASI_IDENTIFIER and project.multi_tenant:
        return "quasi-identifiers are withheld in multi-tenant projects"
    return f"project {project.id} does not include {classification.value} columns"


def visible_columns(table: Table, project: Project) -> list[str]:
    """The columns of ``table`` that ``project`` may see, in table order: the catalog's one rule."""
    classes = project.visible_classes()
    return [c for c, cls in table.columns.items() if cls in classes]


def withheld_columns(table: Table, project: Project) -> list[WithheldColumn]:
    classes = project.visible_classes()
    return [
        WithheldColumn(table.name, c, cls.value, withheld_reason(cls, project))
        for c, cls in table.columns.items()
        if cls not in classes
    ]


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file; raises :class:`CatalogError` with the file name and problem."""
    if not path.exists():
        raise CatalogError(f"catalog file {path} does not exist (run `dataroom demo-data` to create the demo catalog)")
    try:
        raw = tomllib.loads(path.read_text())
        return Catalog.model_validate({**raw, "path": path})
    except (tomllib.TOMLDecodeError, ValidationError, ValueError) as exc:
        raise CatalogError(f"catalog file {path} is invalid: {exc}") from exc

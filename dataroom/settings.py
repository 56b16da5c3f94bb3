"""One typed settings object for the whole data room, read from the environment and a TOML file.

Every setting can be given as an environment variable ``DATAROOM_<NAME>`` (upper case) or in
``$DATAROOM_HOME/dataroom.toml``; the environment wins. See the README's "Configuration" table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def default_home() -> Path:
    """``$DATAROOM_HOME``, or ``~/.dataroom`` when unset (as root ``/var/lib/dataroom``: the room's
    service account owns the home and cannot reach into /root)."""
    fallback = Path("/var/lib/dataroom") if os.geteuid() == 0 else Path.home() / ".dataroom"
    return Path(os.environ.get("DATAROOM_HOME") or fallback).expanduser()


class Settings(BaseSettings):
    """Data room configuration (environment ``DATAROOM_*`` > ``$DATAROOM_HOME/dataroom.toml`` > defaults)."""

    model_config = SettingsConfigDict(env_prefix="DATAROOM_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Data room home: catalog, demo data, audit log")
    catalog_path: Path | None = Field(None, description="Catalog file (default: $DATAROOM_HOME/catalog.toml)")
    audit_path: Path | None = Field(None, description="Audit log (default: $DATAROOM_HOME/audit/audit.jsonl)")
    audit_checkpoint_every: int = Field(1000, ge=1, description="Sign a checkpoint of the audit log after this many records (and at shutdown)")
    audit_checkpoint_interval_s: float = Field(60.0, ge=0, description="... or after this many seconds with unsigned records (0: count and shutdown only)")
    audit_key_path: Path | None = Field(None, description="Writer's Ed25519 checkpoint key, 0600 (default: the audit log's path + .key)")
    audit_public_key: Path | None = Field(None, description="Public key `audit verify` trusts (default: the published audit log's path + .pub)")
    audit_kms_key_id: str | None = Field(None, description="Sign checkpoints with this AWS KMS key (ECC_NIST_P256, kms:Sign) instead of the key file")
    audit_streams: bool = Field(False, description="Each writer appends to its own stream, $DATAROOM_HOME/audit/streams/<stream>/audit.jsonl (on when audit_stream is set)")
    audit_stream: str | None = Field(None, description="This writer's stream id (default: <role>-<hostname>, e.g. broker-web1, cli-web1); implies audit_streams")
    audit_role: str = Field("cli", description="Writer role in the default stream id (the broker sets broker)")
    audit_index_segment: int = Field(4096, ge=100, description="Records per closed Parquet segment of the audit index (audit show, review UI)")
    review_replay_dir: Path | None = Field(None, description="Directory whose sub-directories are the candidate policies the review UI's replay page offers (default: $DATAROOM_HOME/policy-candidates)")

    registry_url: str | None = Field(None, description="Project/hypothesis registry database URL (default: SQLite in $DATAROOM_HOME)")

    policy_engine: Literal["embedded", "opa"] = Field("embedded", description="embedded = regopy in-process; opa = OPA server")
    opa_url: str = Field("http://127.0.0.1:8181", description="OPA server URL when policy_engine = opa")
    policy_memo_size: int = Field(4096, ge=0, description="Decisions remembered by a digest of their complete input and the policy revision (0: off)")

    query_timeout_s: float = Field(60.0, gt=0, description="Per-query wall-clock limit; the query is interrupted after it")
    memory_limit: str = Field("2GB", description="DuckDB memory limit per session")
    threads: int = Field(2, ge=1, description="DuckDB threads per session")
    max_rows: int = Field(1_000_000, ge=1, description="Most rows a query may return (larger results are refused)")
    worker_memory_limit: ByteSize = Field(
        ByteSize(4 * 2**30), description="Memory each execution worker may allocate beyond its start-up mappings, enforced by the OS (RLIMIT_AS); e.g. 4GiB"
    )
    kill_grace_s: float = Field(5.0, gt=0, description="A worker still running this long after the time limit interrupted it is killed")
    max_sql_chars: int = Field(100_000, ge=1, description="Longest SQL text accepted; longer texts are refused as bad input")
    engine_test_hooks: bool = Field(False, description="Test only: lets a marked statement abort its worker (crash containment tests)")
    default_engine: Literal["duckdb", "spark"] = Field("duckdb", description="Engine of projects that do not name one: duckdb (supervised workers) or spark (Spark Connect)")
    spark_remote: str = Field("sc://localhost:15002", description="Spark Connect URL of the spark engine, e.g. sc://spark-connect:15002 (a token as sc://host:port/;token=...)")

    monitor_user: str = Field("svc-monitor", description="Catalog user (a service principal) the model monitor queries as")
    monitor_project: str = Field("model-monitoring", description="Project the model monitor's queries run in")

    aws_role_arn: str | None = Field(None, description="Read-only production role the broker assumes for s3:// tables")
    aws_external_id: str | None = Field(None, description="ExternalId required by that role's trust policy")
    aws_region: str = Field("us-east-1", description="AWS region of the production buckets")
    aws_endpoint_url: str | None = Field(None, description="Override for S3/STS endpoints (tests: a moto server)")
    audit_bucket: str | None = Field(None, description="Object Lock bucket the audit log is shipped to in production")
    audit_anchor_prefix: str = Field("audit", description="Key prefix of the shipped checkpoints and segments in the audit bucket")
    audit_retention_days: int = Field(365, ge=1, description="Object Lock (compliance) retention the shipper sets on each object, in days")
    audit_ship_max_lag_s: float = Field(900.0, gt=0, description="Alert when the oldest checkpoint not yet shipped to the audit bucket is older than this")
    alert_interval_s: float = Field(5.0, ge=0, description="Seconds between the running room's alert evaluations (review service; 0: only when the alerts page opens)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = default_home() / "dataroom.toml"
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @property
    def catalog_file(self) -> Path:
        return self.catalog_path or self.home / "catalog.toml"

    @property
    def registry_database_url(self) -> str:
        return self.registry_url or f"sqlite:///{self.home / 'registry.sqlite'}"

    @property
    def cache_dir(self) -> Path:
        """Derived files only the broker reads: the visible-column copies of local tables."""
        return self.home / "cache"

    @property
    def audit_file(self) -> Path:
        return self.audit_path or self.home / "audit" / "audit.jsonl"

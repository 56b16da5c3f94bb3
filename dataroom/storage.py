"""Where table data comes from: local Parquet files, or Arrow datasets over ``s3://`` prefixes.

Local tables are read by DuckDB's native Parquet reader (the engine guards what it may read).
An ``s3://`` dataset is opened with an explicit schema that holds only the columns a session may
see, so the withheld columns are never read and cannot be named by any SQL. For ``s3://`` locations the broker
assumes the read-only production role through STS (with its ExternalId) and hands the temporary
credentials to Arrow's S3 filesystem; nothing else in the process holds data credentials.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from dataroom.settings import Settings


class StorageError(RuntimeError):
    """A table's data could not be opened (missing path, denied by IAM, bad credentials)."""


@dataclass(frozen=True)
class _Credentials:
    access_key: str
    secret_key: str
    session_token: str | None
    expires: dt.datetime | None


class S3Access:
    """Temporary credentials from the assumed read-only role, refreshed before they expire."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._creds: _Credentials | None = None

    def _client(self, service: str):
        import boto3  # imported when S3 is used: execution workers over local tables never need it

        return boto3.client(service, region_name=self.settings.aws_region, endpoint_url=self.settings.aws_endpoint_url)

    def credentials(self) -> _Credentials:
        with self._lock:
            now = dt.datetime.now(dt.timezone.utc)
            if self._creds and (self._creds.expires is None or self._creds.expires - now > dt.timedelta(minutes=5)):
                return self._creds
            if self.settings.aws_role_arn:
                kwargs = {"RoleArn": self.settings.aws_role_arn, "RoleSessionName": "dataroom-broker", "DurationSeconds": 3600}
                if self.settings.aws_external_id:
                    kwargs["ExternalId"] = self.settings.aws_external_id
                try:
                    c = self._client("sts").assume_role(**kwargs)["Credentials"]
                except Exception as exc:
                    raise StorageError(f"cannot assume role {self.settings.aws_role_arn}: {exc}") from exc
                self._creds = _Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], c["Expiration"])
            else:  # the broker's own identity (e.g. an instance profile) reads directly
                import boto3

                frozen = boto3.Session().get_credentials()
                if frozen is None:
                    raise StorageError("no AWS credentials for s3:// tables: set DATAROOM_AWS_ROLE_ARN")
                f = frozen.get_frozen_credentials()
                self._creds = _Credentials(f.access_key, f.secret_key, f.token, None)
            return self._creds

    def filesystem(self) -> pafs.S3FileSystem:
        c = self.credentials()
        endpoint = self.settings.aws_endpoint_url
        kwargs = {}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs = {"endpoint_override": host, "scheme": scheme}
        return pafs.S3FileSystem(
            access_key=c.access_key, secret_key=c.secret_key, session_token=c.session_token,
            region=self.settings.aws_region, **kwargs,
        )


def local_parquet_files(location: str) -> list[str]:
    """The Parquet files of a local table directory (or the one file it names), in a stable order."""
    path = Path(location)
    files = sorted(str(p) for p in path.glob("*.parquet")) if path.is_dir() else [str(path)] if path.is_file() else []
    if not files:
        raise StorageError(f"cannot open table data at {location}: no Parquet files there")
    return files


def open_dataset(location: str, visible_columns: list[str], s3: S3Access | None) -> ds.Dataset:
    """An Arrow dataset over ``location`` that exposes only ``visible_columns``.

    Two choices keep DuckDB's scan of it close to its native Parquet reader: string columns that
    Parquet stores dictionary-encoded are read as Arrow dictionaries (no per-row string copies
    for low-cardinality columns), and fragments are single row groups, so ``LIMIT 10`` reads one
    row group rather than whole files.
    """
    try:
        if location.startswith("s3://"):
            if s3 is None:
                raise StorageError(f"{location} is on S3 but no S3 access is configured")
            filesystem, path = s3.filesystem(), location.removeprefix("s3://").rstrip("/")
        else:
            filesystem, path = pafs.LocalFileSystem(), location
        full = ds.dataset(path, format="parquet", filesystem=filesystem)
        wanted = {c.lower() for c in visible_columns}
        fields = [f for f in full.schema if f.name.lower() in wanted]
        dictionary_columns = _dictionary_encoded_strings(full, fields)
        file_format = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary_columns))
        schema = pa.schema(
            [pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in dictionary_columns else f for f in fields]
        )
        narrowed = ds.dataset(path, format=file_format, filesystem=filesystem, schema=schema)
        row_groups = [rg for fragment in narrowed.get_fragments() for rg in fragment.split_by_row_group()]
        return ds.FileSystemDataset(row_groups, schema, file_format, filesystem)
    except StorageError:
        raise
    except Exception as exc:  # pyarrow raises OSError/ArrowInvalid with the path in the message
        raise StorageError(f"cannot open table data at {location}: {exc}") from exc


def _dictionary_encoded_strings(dataset: ds.Dataset, fields: list[pa.Field]) -> list[str]:
    """String columns whose first row group Parquet stores with a dictionary."""
    fragment = next(iter(dataset.get_fragments()), None)
    if fragment is None or fragment.metadata.num_row_groups == 0:
        return []
    row_group = fragment.metadata.row_group(0)
    encoded = {
        row_group.column(i).path_in_schema
        for i in range(row_group.num_columns)
        if any("DICTIONARY" in e for e in row_group.column(i).encodings)
    }
    return [f.name for f in fields if pa.types.is_string(f.type) and f.name in encoded]

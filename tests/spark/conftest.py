"""One local Spark Connect server for the whole test session, and query services over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dataroom.pipeline import QueryService
from dataroom.settings import Settings
from dataroom.engines.spark_local import local_connect_server


@pytest.fixture(scope="session")
def spark_remote() -> Iterator[str]:
    """The ``sc://`` URL of pyspark's own local server (local[2], 1 GB driver, 2 shuffle partitions)."""
    with local_connect_server(master="local[2]", driver_memory="1g", shuffle_partitions=2) as url:
        yield url


@pytest.fixture
def spark_settings(dataroom_home: Path, spark_remote: str) -> Settings:
    """Settings of a room whose projects run on Spark by default (the fresh home of ``dataroom_home``)."""
    return Settings(home=dataroom_home, default_engine="spark", spark_remote=spark_remote)


@pytest.fixture
def spark_service(spark_settings: Settings) -> Iterator[QueryService]:
    svc = QueryService(spark_settings)
    yield svc
    svc.close()

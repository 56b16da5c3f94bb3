"""Pulumi entry point; all logic lives in :mod:`infra.program` so tests can run it under mocks."""

import sys
from pathlib import Path

# `pulumi` runs this file from infra/; make the `infra` package importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import build_from_pulumi_config  # noqa: E402

build_from_pulumi_config()

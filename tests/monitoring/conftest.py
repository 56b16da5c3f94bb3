"""A monitored demo room, shared per module: demo data (2000 findings per tenant), the demo model
registered, one monitoring run done. Tests that change it (acknowledgements) say so."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataroom.monitoring.demo import register_demo_model
from dataroom.monitoring.runner import MonitorRunner, RunReport
from dataroom.pipeline import QueryService
from dataroom.registry import dispose_engines
from dataroom.registry.models_registry import ModelInfo
from dataroom.settings import Settings


@dataclass
class MonitoredRoom:
    home: Path
    settings: Settings
    service: QueryService
    model: ModelInfo
    report: RunReport


@pytest.fixture(scope="module")
def monitored(demo_template: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("monitored") / "home"
    shutil.copytree(demo_template, home)
    settings = Settings(home=home)
    model = register_demo_model(settings)
    service = QueryService(settings)
    try:
        report = MonitorRunner(service).run(model.name)[0]
        yield MonitoredRoom(home, settings, service, model, report)
    finally:
        service.close()
        dispose_engines()

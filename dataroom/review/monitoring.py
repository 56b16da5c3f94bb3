"""The review service's monitoring page: per model and tenant, R², RMSE and drift per week as
server-rendered SVG charts with the thresholds and the alerts marked, and the acknowledge action.

Acknowledging goes through :meth:`~dataroom.registry.models_registry.ModelRegistry.acknowledge`, so
the page applies the registry's rules (never the model's author; a written note).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tornado import web

from dataroom.alerts import config_file, load_config
from dataroom.registry import Phase, RegistryError

if TYPE_CHECKING:
    from dataroom.review.app import ReviewHandler
else:  # imported lazily by app.py after ReviewHandler exists
    ReviewHandler = object

log = logging.getLogger("dataroom.review")


def monitoring_chart_svg(model: str, segment: str, windows: list[dict[str, Any]], alerts: list[Any], config: dict[str, Any], reference_rmse: float | None) -> bytes:
    """Three stacked panels over the weeks: R² (threshold), RMSE (limit), KS statistic per column (threshold); alerts as red lines."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.2))
    FigureCanvasSVG(fig)
    axes = fig.subplots(3, 1, sharex=True)
    weeks = [dt.date.fromisoformat(w["window_start"]) for w in windows]
    judged = [w["n"] >= config["min_n"] for w in windows]

    def series(key: str) -> list[float]:
        return [float("nan") if w[key] is None else w[key] for w in windows]

    r2 = [max(v, -1.0) for v in series("r2")]  # a collapse below -1 is drawn at -1
    axes[0].plot(weeks, r2, marker=".", lw=1, color="#1f6feb", label="R²")
    axes[0].axhline(config["r2_min"], color="#c62828", ls="--", lw=1, label=f"threshold {config['r2_min']}")
    axes[0].set_ylim(-1.05, 1.05)
    axes[0].set_ylabel("R²", fontsize=8)
    axes[1].plot(weeks, series("rmse"), marker=".", lw=1, color="#6a3fc1", label="RMSE")
    if reference_rmse:
        axes[1].axhline(config["rmse_ratio_max"] * reference_rmse, color="#c62828", ls="--", lw=1, label=f"{config['rmse_ratio_max']}× reference")
    axes[1].set_ylabel("RMSE", fontsize=8)
    columns = sorted({c for w in windows for c in (w.get("drift") or {})})
    for column in columns:
        ks = [float("nan") if (w["drift"].get(column) or {}).get("ks") is None else w["drift"][column]["ks"] for w in windows]
        axes[2].plot(weeks, ks, marker=".", lw=1, label=f"KS {column}")
    axes[2].axhline(config["drift_min_statistic"], color="#c62828", ls="--", lw=1, label="drift threshold")
    axes[2].set_ylabel("drift (KS)", fontsize=8)
    for a in alerts:
        for ax in axes:
            ax.axvline(a.window_start, color="#c62828", lw=1.5, alpha=0.7)
        axes[0].annotate(f"{a.kind} alert", (a.window_start, 0.95), fontsize=7, color="#c62828", rotation=90, va="top", ha="right")
    small = [wk for wk, ok in zip(weeks, judged) if not ok]
    if small:
        axes[0].plot(small, [-1.0] * len(small), "|", color="#8a94a6", label=f"n < {config['min_n']} (not judged)")
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower left")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{model} · {segment} · per week", fontsize=9)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def _reference_rmse(windows: list[dict[str, Any]], start: dt.date, end: dt.date) -> float | None:
    inside = [w for w in windows if start <= dt.date.fromisoformat(w["window_start"]) < end and w["rmse"] is not None]
    n = sum(w["n"] for w in inside)
    if not n:
        return None
    return (sum(w["rmse"] ** 2 * w["n"] for w in inside) / n) ** 0.5


def make_handlers(base: type) -> list[tuple[str, type]]:
    """The page's routes, as subclasses of the review app's authenticated base handler."""

    class MonitoringHandler(base):  # type: ignore[misc,valid-type]
        def get(self) -> None:
            self.show()

        def show(self, status: int = 200, error: str | None = None) -> None:
            registry = self.state.registry
            models = registry.models
            latest = {m.name: m for m in models.models()}
            entries = []
            for m in latest.values():
                segments = sorted({w["segment"] for w in models.results(m.name, m.version)})
                entries.append({"model": m, "phase": registry.hypothesis(m.hypothesis_id).phase, "segments": segments, "alerts": models.alerts(m.name)})
            settings = self.state.settings
            self.page(
                "monitoring.html", status=status, flash_error=error, models=entries, config=load_config(settings)["monitoring"],
                config_path=config_file(settings), monitor_user=settings.monitor_user, monitor_project=settings.monitor_project,
                phase_display=lambda value: Phase(value).display(),
            )

    class MonitoringChartHandler(base):  # type: ignore[misc,valid-type]
        def get(self, name: str, segment: str) -> None:
            models = self.state.registry.models
            try:
                model = models.model(name)
            except RegistryError as exc:
                raise web.HTTPError(404, str(exc)) from exc
            windows = [w for w in models.results(model.name, model.version) if w["segment"] == segment]
            if not windows:
                raise web.HTTPError(404, f"no monitoring results for {name} on {segment}")
            alerts = [a for a in models.alerts(name) if a.segment == segment]
            config = load_config(self.state.settings)["monitoring"]
            svg = monitoring_chart_svg(name, segment, windows, alerts, config, _reference_rmse(windows, model.reference_start, model.reference_end))
            self.set_header("Content-Type", "image/svg+xml")
            self.finish(svg)

    class AcknowledgeHandler(MonitoringHandler):
        def post(self, alert_id: str) -> None:
            try:
                info = self.state.registry.models.acknowledge(self.user_name, alert_id, self.get_body_argument("note", ""))
            except RegistryError as exc:
                log.warning("acknowledge of monitoring alert %s by %s refused: %s", alert_id, self.user_name, exc)
                self.show(status=exc.status, error=str(exc))
                return
            message = f"acknowledged: {info.model_name} on {info.segment} released in {', '.join(info.quarantined_projects)}"
            self.redirect(self.state.prefix + "monitoring?" + urlencode({"info": message}))

    return [
        (r"monitoring", MonitoringHandler),
        (r"charts/monitoring/([a-z0-9][a-z0-9._-]{1,62})/([a-z0-9_-]{1,64})\.svg", MonitoringChartHandler),
        (r"monitoring/alerts/([0-9]{1,12})/acknowledge", AcknowledgeHandler),
    ]

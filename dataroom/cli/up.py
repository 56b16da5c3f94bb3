"""``dataroom up``: the data room on this machine: JupyterHub, proxy, broker, demo users and data."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from dataroom.settings import Settings


def _port(value: int | None) -> int:
    from dataroom.hub.launcher import free_port

    return value if value else free_port()


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port of the Hub on 127.0.0.1 (what the browser opens).")
@click.option("--broker-port", type=click.IntRange(0, 65535), default=0, help="Port of the broker on 127.0.0.1 [default: a free port].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Hub state: database, pid files, user directories [default: ~/.dataroom-hub]; keep it outside $DATAROOM_HOME.")
@click.option("--password", envvar="DATAROOM_DEMO_PASSWORD", default=None, help="Shared demo password [env DATAROOM_DEMO_PASSWORD; default: generated once, kept in the state dir].")
@click.option("--demo-rows", type=click.IntRange(min=1), default=None, help="Findings per tenant when demo data has to be created.")
@click.option("--notebooks", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None, help="Notebooks copied to each user [default: the checkout's notebooks/].")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING"]), default="INFO", show_default=True)
def up(port: int, broker_port: int, state_dir: Path | None, password: str | None, demo_rows: int | None, notebooks: Path | None, log_level: str) -> None:
    """Start the data room: JupyterHub on 127.0.0.1 with the broker, demo users and notebooks.

    Creates the demo data and catalog under $DATAROOM_HOME if there are none, and installs
    configurable-http-proxy with npm if it is missing. Every catalog user (alice, bob, sam,
    mallory in the demo) logs in with the shared demo password printed at start. Ctrl-C stops
    the Hub, the proxy, the broker and every user server.
    """
    from dataroom import demo_data
    from dataroom.catalog import CatalogError, load_catalog
    from dataroom.hub.config import HubOptions, default_notebooks_dir
    from dataroom.hub.launcher import DataRoomHub, HubStartError, demo_password, find_proxy, install_proxy, python_has_jupyterhub
    from dataroom.review.service import review_role, review_service

    settings = Settings()
    home = settings.home.expanduser().resolve()
    if not settings.catalog_file.exists():
        rows = demo_rows or demo_data.DEFAULT_ROWS
        click.echo(f"no catalog at {settings.catalog_file}: writing demo data ({rows:,} findings per tenant) under {home} ...")
        demo_data.generate(home, rows=rows)
    try:
        catalog = load_catalog(settings.catalog_file)
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc
    if not python_has_jupyterhub():
        raise click.ClickException(f"{sys.executable} lacks jupyterhub/jupyter-server/ipykernel: run `make setup` (or pip install -e .)")
    state = (state_dir or Path.home() / ".dataroom-hub").expanduser().resolve()
    if state == home or home in state.parents:
        raise click.UsageError(f"--state-dir {state} is inside $DATAROOM_HOME ({home}): user directories must not live beside the data")
    proxy = find_proxy()
    if proxy is None:
        click.echo("configurable-http-proxy not found: installing it with npm ...")
        proxy = install_proxy(state / "node")

    options = HubOptions(
        state_dir=state,
        home=home,
        demo_password=demo_password(state, password),
        port=port,
        hub_port=_port(None),
        proxy_api_port=_port(None),
        broker_port=_port(broker_port),
        proxy_command=[proxy],
        notebooks_dir=notebooks or default_notebooks_dir(),
        log_level=log_level,
    )
    review = review_service(home, _port(None), pid_dir=options.pid_dir, cwd=options.state_dir, log_level=log_level)
    hub = DataRoomHub(options, catalog, extra_services=[review], extra_roles=[review_role()])

    def terminate(signum, frame):  # SIGTERM behaves like Ctrl-C; SIGINT even when started with it ignored
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(f"starting JupyterHub on {options.hub_url} (state: {state}) ...")
        try:
            hub.start()
        except HubStartError as exc:
            raise click.ClickException(str(exc)) from exc
        users = sorted(catalog.users)
        click.echo(
            "\n"
            f"  Data room is up:  {options.hub_url}\n"
            f"  Log in as one of: {', '.join(users)}\n"
            f"  Shared password:  {options.demo_password}\n"
            f"  Broker (API):     {hub.broker_url}  (OpenAPI: {hub.broker_url}openapi.json)\n"
            f"  Security review:  {options.hub_url.rstrip('/')}/services/{review['name']}/  (security group only)\n"
            f"  Audit log:        {settings.audit_file}\n"
            "  In a notebook:    import dataroom; room = dataroom.connect(project=\"remediation-acme\")\n"
            "  Press Ctrl-C to stop everything.\n",
        )
        code = hub.wait()
        click.echo(f"JupyterHub exited (code {code}); stopping what is left ...", err=True)
        raise SystemExit(code or 1)
    except KeyboardInterrupt:
        click.echo("\nstopping JupyterHub, the proxy, the broker and user servers ...")
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        hub.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("stopped.")


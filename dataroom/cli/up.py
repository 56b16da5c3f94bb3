"""``dataroom up``: the data room on this machine: JupyterHub, proxy, broker, demo users and data."""

from __future__ import annotations

import os
import pwd
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dataroom.settings import Settings

if TYPE_CHECKING:
    from dataroom.hub.config import HubOptions
    from dataroom.hub.launcher import DataRoomHub

INSECURE_FLAG = "--insecure-single-user"
NO_ISOLATION_WARNING = (
    "WARNING: {flag}: NO ISOLATION. Every user's notebook server runs as {user}, the account of the Hub "
    "itself: any notebook can read the data, the catalog, the audit log, the registry and the Hub's database, "
    "and signal the broker. For a single-user demo only; run `dataroom up` as root to give each user an OS "
    "account of their own."
)
NEEDS_ROOT = (
    "`dataroom up` runs each user's notebook server as an OS account of its own and the broker as the "
    "service account, which needs root: run it as root (e.g. sudo). To run without any isolation between "
    "users and the data (every server as you), pass " + INSECURE_FLAG + "."
)


def default_state_dir() -> Path:
    """~/.dataroom-hub, or /var/lib/dataroom-hub as root (users' homes live below it: not under /root)."""
    return Path("/var/lib/dataroom-hub") if os.geteuid() == 0 else Path.home() / ".dataroom-hub"


def _port(value: int | None) -> int:
    from dataroom.hub.launcher import free_port

    return value if value else free_port()


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port of the Hub on 127.0.0.1 (what the browser opens).")
@click.option("--broker-port", type=click.IntRange(0, 65535), default=0, help="Port of the broker on 127.0.0.1 [default: a free port].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Hub state: database, pid files, user homes [default: ~/.dataroom-hub; as root /var/lib/dataroom-hub]; keep it outside $DATAROOM_HOME.")
@click.option("--password", envvar="DATAROOM_DEMO_PASSWORD", default=None, help="Shared demo password [env DATAROOM_DEMO_PASSWORD; default: generated once, kept in the state dir].")
@click.option("--demo-rows", type=click.IntRange(min=1), default=None, help="Findings per tenant when demo data has to be created.")
@click.option("--notebooks", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None, help="Notebooks copied to each user [default: the checkout's notebooks/].")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING"]), default="INFO", show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="Also stream the Hub's, proxy's and services' logs here (they are always written to <state-dir>/logs/).")
@click.option(INSECURE_FLAG, "insecure_single_user", is_flag=True, help="Run without root and WITHOUT ISOLATION: every server as the Hub's own OS user, able to read all data room files.")
def up(
    port: int,
    broker_port: int,
    state_dir: Path | None,
    password: str | None,
    demo_rows: int | None,
    notebooks: Path | None,
    log_level: str,
    verbose: bool,
    insecure_single_user: bool,
) -> None:
    """Start the data room: JupyterHub on 127.0.0.1 with the broker, demo users and notebooks.

    Runs as root: each user's server runs as a system account of its own (dataroom-<user>,
    created on first spawn), the broker and review service as the service account (dataroom),
    which owns $DATAROOM_HOME; users can open none of the room's files. Creates the demo data and
    catalog under $DATAROOM_HOME if there are none, and installs configurable-http-proxy with npm
    if it is missing. Every catalog user (alice, bob, sam, mallory in the demo) logs in with the
    shared demo password printed at start. Ctrl-C stops the Hub, the proxy, the broker and every
    user server. It prints a short banner; the components' logs go to <state-dir>/logs/ (hub.log,
    broker.log, review.log), streamed here with --verbose. A failed start shows the relevant log
    lines and a hint, and exits 1.
    """
    if insecure_single_user:
        _warn_no_isolation()
    elif os.geteuid() != 0:
        raise click.ClickException(NEEDS_ROOT)
    from dataroom import demo_data
    from dataroom.catalog import CatalogError, load_catalog
    from dataroom.hub.config import HubOptions, default_notebooks_dir
    from dataroom.hub.launcher import DataRoomHub, HubStartError, demo_password, find_proxy, install_proxy, python_has_jupyterhub
    from dataroom.review.service import review_role, review_service

    settings = Settings()
    home = settings.home.expanduser().resolve()
    if not insecure_single_user:
        outside = room_files_outside_home(settings, home)
        if outside:
            raise click.UsageError(
                f"{', '.join(outside)} outside $DATAROOM_HOME ({home}): the service account owns that directory and "
                "nothing else, so keep the room's files in it (unset those settings or point them inside it)"
            )
    if not settings.catalog_file.exists():
        rows = demo_rows or demo_data.DEFAULT_ROWS
        click.echo(f"no catalog at {settings.catalog_file}: writing demo data ({rows:,} findings per tenant) under {home} ...")
        demo_data.generate(home, rows=rows)
        from dataroom.monitoring.demo import register_demo_model

        register_demo_model(settings)  # the monitoring story out of the box, as `dataroom demo-data` does
    try:
        catalog = load_catalog(settings.catalog_file)
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc
    if not python_has_jupyterhub():
        raise click.ClickException(f"{sys.executable} lacks jupyterhub/jupyter-server/ipykernel: run `make setup` (or pip install -e .)")
    state = (state_dir or default_state_dir()).expanduser().resolve()
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
        isolation=not insecure_single_user,
        log_level=log_level,
    )
    review = review_service(home, _port(None), pid_dir=options.pid_dir, cwd=options.state_dir, log_level=log_level)
    from dataroom.review.releases import release_role  # requesters download their released outputs there

    from dataroom.hub.logs import LOG_DIR, LogFollower

    log_dir = state / LOG_DIR
    hub = DataRoomHub(options, catalog, extra_services=[review], extra_roles=[review_role(), release_role(review["name"])], log_dir=log_dir)
    follower = LogFollower(log_dir) if verbose else None

    def terminate(signum, frame):  # SIGTERM behaves like Ctrl-C; SIGINT even when started with it ignored
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(f"starting JupyterHub on {options.hub_url} (state: {state}) ...")
        if follower is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            follower.start()
        try:
            hub.start()
        except HubStartError as exc:
            raise click.ClickException(f"the data room did not start: {exc}") from exc
        logs = ", ".join(sorted(p.name for p in log_dir.glob("*.log")))
        click.echo(
            "\n"
            f"  Data room is up:  {options.hub_url}\n"
            f"  Log in as:        {login_names(catalog)}, with the shared password\n"
            f"  Shared password:  {options.demo_password}\n"
            f"  Broker (API):     {hub.broker_url}  (OpenAPI: {hub.broker_url}openapi.json)\n"
            f"  Security review:  {options.hub_url.rstrip('/')}/services/{review['name']}/  (security group only)\n"
            f"  Audit log:        {settings.audit_file}\n"
            f"  Logs:             {log_dir}/ ({logs}){'' if verbose else '; --verbose streams them here'}\n"
            f"  Isolation:        {isolation_note(options, hub)}\n"
            "  In a notebook:    import dataroom; room = dataroom.connect(project=\"remediation-acme\")\n"
            "  Press Ctrl-C to stop everything.\n",
        )
        if insecure_single_user:
            _warn_no_isolation()  # again under the banner, where it is read
        code = hub.wait()
        click.echo(f"JupyterHub exited (code {code}); stopping what is left ...", err=True)
        raise SystemExit(code or 1)
    except KeyboardInterrupt:
        click.echo("\nstopping JupyterHub, the proxy, the broker and user servers ...")
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        hub.stop()
        if follower is not None:
            follower.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("stopped.")


def login_names(catalog) -> str:  # type: ignore[no-untyped-def]
    """Who logs in to the hub, the security group marked: ``alice, bob, mallory, sam (security)``."""
    people = sorted((name, user) for name, user in catalog.users.items() if not user.is_service_principal)
    return ", ".join(f"{name} (security)" if "security" in user.groups else name for name, user in people)


def room_files_outside_home(settings: Settings, home: Path) -> list[str]:
    """Settings that put a room file outside ``home`` (isolation gives the service account only ``home``)."""
    places = {"DATAROOM_CATALOG_PATH": settings.catalog_file, "DATAROOM_AUDIT_PATH": settings.audit_file}
    url = settings.registry_database_url
    if url.startswith("sqlite:///"):
        places["DATAROOM_REGISTRY_URL"] = Path(url.removeprefix("sqlite:///"))
    return [f"{name}={path}" for name, path in places.items() if not path.expanduser().resolve().is_relative_to(home)]


def _warn_no_isolation() -> None:
    user = pwd.getpwuid(os.geteuid()).pw_name
    click.secho(NO_ISOLATION_WARNING.format(flag=INSECURE_FLAG, user=user), fg="red", bold=True, err=True)


def isolation_note(options: HubOptions, hub: DataRoomHub) -> str:
    """One line of the banner: who the servers and the services run as."""
    if not options.isolation:
        return "NONE (--insecure-single-user): every server runs as the Hub's own OS user"
    service = hub.service_account.name if hub.service_account else options.service_account
    return (
        f"each user's server as {options.account_prefix}<user>; broker and review as {service!r}, which owns "
        f"$DATAROOM_HOME (run writing CLI commands as it meanwhile: runuser -u {service} -- dataroom ...)"
    )

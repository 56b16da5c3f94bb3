"""No download from the notebook servers: a Jupyter server extension every spawned server loads.

The only way a result leaves the room is a release request (``room.request_release``). So the
spawned servers refuse, with 403 and a message that names that way:

* ``/files/...`` (downloads, "Open in New Browser Tab", "Copy Download Link"), ``/view/...``
  (which embeds ``/files``) and ``/nbconvert/...`` (Save and Export Notebook As ...);
* file *content* through the contents API (``GET /api/contents/<file>``) when the file is binary
  (``format=base64``: images, Parquet, archives), a data file by its suffix (CSV, Parquet, JSON,
  spreadsheets, pickles, databases ...), or larger than :data:`MAX_VIEWABLE_BYTES`. Notebooks,
  directories and small text files (scripts, Markdown) still open, or JupyterLab could not work.

and JupyterLab's download and export UI is switched off in the page it serves
(``disabledExtensions`` through the server's ``page_config_hook``: :data:`DISABLED_LAB_PLUGINS`).

The spawner loads the extension on the command line
(``--ServerApp.jpserver_extensions=dataroom.hub.no_download=True``) and with
``disable_user_config`` so a config file in the user's home cannot take it out. What this does
*not* stop is in docs/security-model.md: the server runs as the user, whose code can print
anything it holds to the screen.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler, path_regex
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web
from tornado.ioloop import IOLoop
from tornado.routing import HostMatches

EXTENSION = "dataroom.hub.no_download"
REFUSAL = "downloads and exports are disabled in the data room: take results out with room.request_release(obj, title, justification)"
MAX_VIEWABLE_BYTES = 1 << 20
DATA_SUFFIXES = {
    ".csv", ".tsv", ".parquet", ".pq", ".arrow", ".feather", ".ipc", ".json", ".jsonl", ".ndjson", ".xlsx", ".xls", ".ods",
    ".zip", ".gz", ".bz2", ".xz", ".zst", ".tar", ".7z", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".hdf5",
    ".db", ".sqlite", ".sqlite3", ".duckdb", ".avro", ".orc", ".sav", ".dta", ".rds", ".rdata", ".skops",
}
DISABLED_LAB_PLUGINS = (
    "@jupyterlab/docmanager-extension:download",
    "@jupyterlab/filebrowser-extension:download",
    "@jupyterlab/filebrowser-extension:open-browser-tab",
    "@jupyterlab/notebook-extension:export",
)


class RefusedHandler(JupyterHandler):
    """403 for every method on the download and export paths (after login, like the handlers it shadows)."""

    @web.authenticated  # a browser without the server's cookie goes through the Hub's login first
    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        self.log.warning("refused %s %s: downloads are disabled", self.request.method, self.request.path)
        self.set_status(403)
        self.set_header("Content-Type", "application/json")
        self.finish({"message": REFUSAL, "reason": "download_disabled"})

    get = post = put = head = _refuse  # type: ignore[assignment]

    def check_xsrf_cookie(self) -> None:  # the refusal needs no token
        return None


def content_refusal(model: dict[str, Any], requested_format: str | None) -> str | None:
    """Why the contents API must not hand this file's bytes out, or None if it may."""
    if model.get("type") != "file":
        return None
    if requested_format == "base64" or model.get("format") == "base64" or (model.get("mimetype") or "").startswith(("image/", "application/octet")):
        return "binary file"
    suffix = PurePosixPath(model.get("name") or "").suffix.lower()
    if suffix in DATA_SUFFIXES:
        return f"data file ({suffix})"
    size = model.get("size")
    if isinstance(size, int) and size > MAX_VIEWABLE_BYTES:
        return f"file larger than {MAX_VIEWABLE_BYTES >> 20} MiB"
    return None


class NoExportContentsHandler(ContentsHandler):
    """The contents API without the bytes of binary, data or large files."""

    @web.authenticated
    @authorized
    async def get(self, path: str = "") -> None:
        if self.get_query_argument("content", default="1") != "0":
            try:
                model = await ensure_async(self.contents_manager.get(path=path or "", content=False))
            except web.HTTPError:
                model = None  # let the real handler answer (404, 400 ...)
            fmt = self.get_query_argument("format", default=None)
            if model is not None and model.get("type") == "file":
                # a file without content has no format yet: binary unless it decodes as text
                if fmt is None and model.get("format") is None:
                    fmt = None if _is_text(self.contents_manager, path) else "base64"
                why = content_refusal(model, fmt)
                if why:
                    self.log.warning("refused the content of %s: %s", path, why)
                    self.set_status(403)
                    self.finish({"message": f"{why}: {REFUSAL}", "reason": "download_disabled"})
                    return
        await super().get(path)


def _is_text(contents_manager: Any, path: str) -> bool:
    try:
        os_path = contents_manager._get_os_path(path)
        with open(os_path, "rb") as fh:
            head = fh.read(8192)
        head.decode("utf-8")
        return b"\0" not in head
    except (AttributeError, OSError, UnicodeDecodeError):
        return False


def disable_lab_plugins(handler: Any, page_config: dict[str, Any], previous: Any = None) -> dict[str, Any]:
    """``page_config_hook``: JupyterLab's download and export plugins are off whatever else is configured."""
    if previous is not None:
        page_config = previous(handler, page_config)
    disabled = page_config.get("disabledExtensions") or []
    disabled = list(disabled) if isinstance(disabled, (list, tuple)) else [k for k, v in dict(disabled).items() if v]
    page_config["disabledExtensions"] = sorted(set(disabled) | set(DISABLED_LAB_PLUGINS))
    return page_config


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Shadow the download, view, export and contents routes (ahead of every other rule), and turn off Lab's UI for them."""
    app = serverapp.web_app
    base = app.settings.get("base_url", "/")
    not_sub_routes = r"(?!.*/checkpoints(?:/[^/]*)?$)(?!.*/trust$)"  # checkpoints and trust keep their own handlers
    handlers = [
        (url_path_join(base, r"/files/.*"), RefusedHandler),
        (url_path_join(base, r"/view/.*"), RefusedHandler),
        (url_path_join(base, r"/nbconvert/.*"), RefusedHandler),
        (url_path_join(base, r"/api/contents") + not_sub_routes + path_regex, NoExportContentsHandler),
    ]
    app.add_handlers(".*$", handlers)
    rules = app.default_router.rules
    ours = next(r for r in reversed(rules) if isinstance(r.matcher, HostMatches) and any(getattr(x, "target", None) is RefusedHandler for x in r.target.rules))
    rules.remove(ours)
    rules.insert(0, ours)  # before the server's own routes and every other extension's

    def install_hook() -> None:  # once every extension has loaded: JupyterHub's own sets a hook of its own, which ours wraps
        previous = app.settings.get("page_config_hook")
        app.settings["page_config_hook"] = lambda handler, page_config: disable_lab_plugins(handler, page_config, previous)

    IOLoop.current().add_callback(install_hook)
    serverapp.log.info("data room: downloads and exports disabled (%s)", ", ".join(DISABLED_LAB_PLUGINS))


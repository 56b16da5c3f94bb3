"""No download from a spawned notebook server (real `dataroom up`: JupyterHub, proxy, alice's server).

Through the Hub's proxy, as alice (her API token, and her browser cookie after the Hub's OAuth
dance), the download, view and export endpoints answer 403 and name the one way out; the contents
API keeps notebooks and small scripts but refuses the bytes of data and binary files; JupyterLab's
page is served with the download and export plugins disabled. A config file in alice's home that
takes the extension out is ignored after a restart. The one way out, ``room.request_release``,
files a request with the checker's report from her kernel.
"""

from __future__ import annotations

import json
import re

import requests
from hub_support import RunningRoom, kernel_json

from dataroom.hub.no_download import DISABLED_LAB_PLUGINS

NOTEBOOK = "remediation_by_tenant.ipynb"

WRITE_FILES = r"""
import json, pathlib
pathlib.Path("extract.csv").write_text("cve_id,n\nCVE-1,3\n")
pathlib.Path("extract.txt").write_text("cve_id,n\nCVE-1,3\n" * 80000)  # 1.3 MB of text
pathlib.Path("plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
pathlib.Path("helper.py").write_text("def f():\n    return 1\n")
print(json.dumps("ok"))
"""


def _get(url: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=60, allow_redirects=False, **kwargs)


def _refused(response: requests.Response) -> None:
    assert response.status_code == 403, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), (response.url, response.text[:800])
    assert "request_release" in response.json()["message"]


def test_download_view_and_export_endpoints_refuse_for_the_notebook_user(room: RunningRoom, alice, alice_kernel) -> None:
    base = alice.user.server_url()
    assert kernel_json(alice_kernel, WRITE_FILES) == "ok"
    for path in (
        f"files/{NOTEBOOK}",
        f"files/{NOTEBOOK}?download=1",
        "files/extract.csv",
        "files/helper.py",
        f"view/{NOTEBOOK}",
        f"nbconvert/html/{NOTEBOOK}?download=true",
        f"nbconvert/script/{NOTEBOOK}",
        "nbconvert/python/extract.csv",
    ):
        _refused(_get(base + path, alice.token))
    post = requests.post(base + "nbconvert/html", json={"cells": []}, headers={"Authorization": f"token {alice.token}"}, timeout=60)
    assert post.status_code == 403

    # contents API: the bytes of data, binary and large files are refused; notebooks and scripts open
    for path in ("extract.csv", "plot.png", "extract.txt", "plot.png?format=base64", "extract.csv?format=text&type=file"):
        _refused(_get(f"{base}api/contents/{path}", alice.token))
    notebook = _get(f"{base}api/contents/{NOTEBOOK}", alice.token)
    assert notebook.status_code == 200 and notebook.json()["type"] == "notebook"
    script = _get(f"{base}api/contents/helper.py", alice.token)
    assert script.status_code == 200 and "return 1" in script.json()["content"]
    listing = _get(f"{base}api/contents/", alice.token).json()
    assert {"extract.csv", "plot.png"} <= {item["name"] for item in listing["content"]}  # names stay visible
    meta = _get(f"{base}api/contents/extract.csv?content=0", alice.token)
    assert meta.status_code == 200 and meta.json()["content"] is None
    checkpoints = _get(f"{base}api/contents/{NOTEBOOK}/checkpoints", alice.token)
    assert checkpoints.status_code == 200  # sub-routes keep their own handlers

    # without credentials: nothing, not even whether the file exists
    assert _get(base + f"files/{NOTEBOOK}").status_code in (302, 403)
    assert _get(base + "api/contents/extract.csv").status_code in (302, 403)


def test_the_browser_path_with_alices_cookie_refuses_too_and_lab_has_no_download_ui(room: RunningRoom, alice) -> None:
    browser = alice.user.http  # her Hub login cookie; the server's OAuth dance is followed like a browser does
    response = browser.get(alice.user.server_url() + f"files/{NOTEBOOK}?download=1", timeout=60)
    assert response.url.endswith(f"files/{NOTEBOOK}?download=1"), (response.status_code, response.url, response.text[:800])
    _refused(response)
    lab = browser.get(alice.user.server_url() + "lab", timeout=60)
    assert lab.status_code == 200
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', lab.text, re.S).group(1))
    assert set(DISABLED_LAB_PLUGINS) <= set(config["disabledExtensions"])


def test_a_config_file_in_the_users_home_cannot_switch_it_off(room: RunningRoom, alice) -> None:
    kernel = alice.user.start_kernel(alice.token)
    try:
        kernel_json(
            kernel,
            "import json, pathlib\n"
            "d = pathlib.Path.home() / '.jupyter'; d.mkdir(exist_ok=True)\n"
            "(d / 'jupyter_server_config.json').write_text(json.dumps({'ServerApp': {'jpserver_extensions': {'dataroom.hub.no_download': False}}}))\n"
            # a Python config file is code: it could take the extension's loader out before the server calls it
            "(d / 'jupyter_server_config.py').write_text('import dataroom.hub.no_download as m\\nm._load_jupyter_server_extension = lambda app: None\\n')\n"
            "print(json.dumps('written'))",
        )
    finally:
        kernel.shutdown()
    alice.user.stop_server()
    alice.user.start_server()
    _refused(_get(alice.user.server_url() + f"files/{NOTEBOOK}", alice.token))


def test_request_release_from_the_kernel_files_a_request_with_the_checks(room: RunningRoom, alice) -> None:
    kernel = alice.user.start_kernel(alice.token)
    try:
        release = kernel_json(
            kernel,
            "import json, dataroom\n"
            "room = dataroom.connect(project='remediation-acme')\n"
            "counts = room.sql('SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1 ORDER BY 1')\n"
            "r = room.request_release(counts, 'Findings per severity', 'For the quarterly report')\n"
            "print(json.dumps(r))",
        )
        refused = kernel.execute(
            "import dataroom\ntry:\n    room.request_release({'a': 1}, 't', 'j')\nexcept dataroom.client.ReleaseRefused as e:\n    print('refused:', e)"
        ).raise_for_error()
    finally:
        kernel.shutdown()
    assert release["status"] == "pending" and release["requester"] == "alice" and release["project_id"] == "remediation-acme"
    assert release["kind"] == "table" and release["filename"] == "Findings-per-severity.csv" and len(release["decision_ids"]) == 1
    assert {c["code"] for c in release["checks"]["checks"]} >= {"threshold", "sensitive_columns", "identifying_values", "support"}
    assert "cannot release a dict" in refused.stdout
    # alice sees her request through the broker; nothing about it downloads from her server
    listed = requests.get(room.broker_url + "v1/releases", headers={"Authorization": f"token {alice.token}"}, timeout=60).json()
    assert release["id"] in [r["id"] for r in listed["releases"]]
    # `dataroom up` lets her reach the review service for her own releases (release_role), and nothing else there
    review = room.hub_url + "/services/review/"
    mine = alice.user.http.get(review + "releases/mine", timeout=60)
    assert mine.status_code == 200 and f'data-release-id="{release["id"]}"' in mine.text
    assert alice.user.http.get(review + f"releases/{release['id']}", timeout=60).status_code == 403
    assert alice.user.http.get(review + "queries", timeout=60).status_code == 403
    assert alice.user.http.get(review + f"releases/{release['id']}/download", timeout=60).status_code == 409  # not released yet


def test_jupyterlab_in_a_real_browser_offers_no_download_or_export(room: RunningRoom, alice) -> None:
    from hub_support import PASSWORD

    from tests.support.browser import ARTIFACTS, launched_chromium

    browser_gen = launched_chromium()
    browser = next(browser_gen)
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(f"{room.hub_url}/hub/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login_submit")
        page.wait_for_load_state()
        page.goto(alice.user.server_url() + "lab")
        item = page.locator(f'.jp-DirListing-item[title*="{NOTEBOOK}"], .jp-DirListing-item:has-text("{NOTEBOOK}")').first
        item.wait_for(timeout=120_000)
        item.click(button="right")
        menu = page.locator(".lm-Menu").last
        menu.wait_for()
        entries = [t.strip() for t in menu.locator(".lm-Menu-itemLabel").all_text_contents()]
        page.screenshot(path=str(ARTIFACTS / "lab-context-menu.png"))
        assert "Open" in entries and "Rename" in entries, entries  # the menu is there ...
        assert not {"Download", "Copy Download Link", "Open in New Browser Tab"} & set(entries), entries  # ... without the way out
        page.keyboard.press("Escape")
        page.click('.lm-MenuBar-itemLabel:text-is("File")')
        file_menu = [t.strip() for t in page.locator(".lm-Menu").last.locator(".lm-Menu-itemLabel").all_text_contents()]
        assert "Save and Export Notebook As" not in file_menu and "Download" not in file_menu, file_menu
        assert any(t.startswith("Save") for t in file_menu), file_menu
    finally:
        browser_gen.close()

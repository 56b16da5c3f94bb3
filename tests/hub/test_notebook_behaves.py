"""The notebook behaves like a notebook (issue 17 items 3, 4, 9), in alice's real spawned kernel.

Interrupting a running query (the kernel's interrupt, what the stop button sends) cancels it on
the broker and shows one line, not a traceback; ``room.tables()`` shows every table and column;
``SELECT *`` notes what it left out under the result; every result shape reaches Polars.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from hub_support import RunningRoom, broker_query

from dataroom.client import connect
from dataroom.hub.rest import ExecutionResult, Kernel
from tests.core.test_result_shapes import SHAPES
from tests.hub.test_broker_limits import SLOW_SQL, decision_for


def interrupt(kernel: Kernel) -> None:
    response = requests.post(
        f"{kernel.server_url}api/kernels/{kernel.kernel_id}/interrupt", headers={"Authorization": f"token {kernel.token}"}, timeout=30
    )
    assert response.status_code == 204, response.text


def test_interrupting_a_query_cancels_it_on_the_broker_in_one_line(room: RunningRoom, alice_kernel: Kernel) -> None:
    sql = SLOW_SQL.format(tag=uuid.uuid4().hex[:10])
    alice_kernel.execute("import dataroom\nroom = dataroom.connect(project='remediation-acme')").raise_for_error()
    done: list[ExecutionResult] = []
    runner = threading.Thread(target=lambda: done.append(alice_kernel.execute(f"df = room.sql({sql!r})", timeout=120)))
    runner.start()
    decision = decision_for(room, sql)  # the broker decided it and is running it
    assert decision["outcome"] == "allowed"
    time.sleep(0.5)
    interrupt(alice_kernel)
    runner.join(120)
    assert done, "the cell did not finish after the interrupt"
    result = done[0]
    assert result.error is not None and result.error["ename"] == "QueryInterrupted"
    shown = result.error["traceback"]
    assert len(shown) == 1 and "query interrupted" in shown[0], shown
    assert "Traceback" not in "\n".join(shown) + result.stderr + result.stdout
    completion = room.completion(decision["decision_id"], timeout=60)
    assert completion is not None and completion["status"] == "refused" and completion["reason_code"] == "cancelled"
    # the connection is usable again at once
    after = alice_kernel.execute("print(room.sql('SELECT count(*) AS n FROM acme.findings')['n'][0])").raise_for_error()
    assert after.stdout.strip() == "2000"


def test_tables_renders_every_table_and_column(room: RunningRoom, alice_kernel: Kernel) -> None:
    result = alice_kernel.execute("import dataroom\ndataroom.connect(project='remediation-acme').tables()").raise_for_error()
    [shown] = [o["data"] for o in result.outputs if o["type"] == "execute_result"]
    expected = connect("remediation-acme", url=room.broker_url, token=alice_kernel.token).tables()
    assert expected.height > 10  # more rows than a default repr shows
    html, text = shown["text/html"], shown["text/plain"]
    for row in expected.iter_rows(named=True):
        assert f"<td>&quot;{row['column']}&quot;</td>" in html
        assert row["column"] in text
    assert "…" not in text and "&hellip;" not in html and "…" not in html
    plain = alice_kernel.execute("print(dataroom.connect(project='remediation-acme').tables())").raise_for_error()
    assert all(c in plain.stdout for c in expected["column"]) and "…" not in plain.stdout


def test_star_notes_left_out_columns_under_the_result(room: RunningRoom, alice_kernel: Kernel) -> None:
    code = "import dataroom\nroom = dataroom.connect(project='remediation-acme')\nroom.sql('SELECT * FROM acme.findings LIMIT 2')"
    result = alice_kernel.execute(code).raise_for_error()
    assert any(o["type"] == "execute_result" for o in result.outputs)
    assert "note: * left out withheld columns: acme.findings.analyst_email" in result.stderr
    dup = alice_kernel.execute("room.sql('SELECT severity, severity FROM acme.findings LIMIT 1').columns").raise_for_error()
    assert "severity_1" in str(dup.outputs) and "duplicate result column names" in dup.stderr


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_result_shape_reaches_polars_in_the_client(room: RunningRoom, tokens: dict[str, str], shape: str) -> None:
    sql, names = SHAPES[shape]
    frame = connect("remediation-acme", url=room.broker_url, token=tokens["alice"]).sql(sql)
    assert frame.columns == names
    str(frame)


def test_a_typo_is_http_400_with_a_suggestion_and_a_withheld_column_403(room: RunningRoom, tokens: dict[str, str]) -> None:
    from dataroom.client import QueryDenied, QueryInvalid

    typo = broker_query(room, "remediation-acme", "SELECT severty FROM acme.findings", token=tokens["alice"])
    assert typo.status_code == 400
    decision = typo.json()["decision"]
    assert decision["outcome"] == "invalid" and "did you mean severity?" in decision["reasons"][0]["message"]
    assert room.decision(decision["decision_id"])["outcome"] == "invalid"
    client = connect("remediation-acme", url=room.broker_url, token=tokens["alice"])
    with pytest.raises(QueryInvalid, match="did you mean severity"):
        client.sql("SELECT severty FROM acme.findings")
    with pytest.raises(QueryDenied, match=r"\[pii_column\]"):
        client.sql("SELECT analyst_email FROM acme.findings")
    assert broker_query(room, "remediation-acme", "SELECT analyst_email FROM acme.findings", token=tokens["alice"]).status_code == 403

"""Execution engines: where an already decided statement runs, and nowhere else.

The pipeline (``dataroom/pipeline.py``) decides and audits; an engine only executes. Today's
engine is the locked DuckDB session (:mod:`~dataroom.engines.duckdb_session`), run inside
supervised worker processes (:mod:`~dataroom.engines.supervisor`, :mod:`~dataroom.engines.worker`)
whose memory the OS caps, whose time limit interrupts then kills, and whose crash is a refusal.
Local tables are read from visible-column copies (:mod:`~dataroom.engines.visible_copies`), so
no object a session can name holds a withheld column.

Everything an engine can say back is in :mod:`~dataroom.engines.errors`.
"""

from dataroom.engines.cancellation import Cancellation
from dataroom.engines.errors import EngineFailure, EngineRefusal, SqlError

__all__ = ["Cancellation", "EngineFailure", "EngineRefusal", "SqlError"]

"""The broker: the JupyterHub service through which every notebook query reaches the data.

It is the only process holding data credentials and paths. Each request carries the caller's
JupyterHub token; the broker asks the Hub who that is (``jupyterhub.services.auth.HubAuth``),
re-checks that the token holds ``access:services!service=<name>``, feeds the Hub groups to the
governed pipeline (:meth:`dataroom.pipeline.QueryService.run`) and streams an allowed result as
Arrow IPC. Refused requests (no token, bad token, missing scope, bad input) are audited too.

Modules: :mod:`~dataroom.broker.auth` (who is calling), :mod:`~dataroom.broker.flood` (rate limit
and coalesced audit records for floods of refused requests), :mod:`~dataroom.broker.jobs` (one query in a
worker thread, cancellable), :mod:`~dataroom.broker.app` (the tornado handlers),
:mod:`~dataroom.broker.openapi` (the API description), :mod:`~dataroom.broker.server` (the
process: ``python -m dataroom.broker``, started by the Hub as a managed service).

This package imports nothing heavy at import time.
"""

DEFAULT_SERVICE_NAME = "broker"

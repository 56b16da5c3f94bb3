"""The security review surface: the query log, summaries, approvals and alerts.

``dataroom.querylog`` is plain Python (used by the CLI too); ``dataroom.review.app`` is the
tornado JupyterHub service (imported only when the service runs).
"""

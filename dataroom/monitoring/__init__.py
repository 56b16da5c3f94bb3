"""Model monitoring inside the room: per-segment performance and drift of registered models.

* :mod:`dataroom.monitoring.artifacts`: safe model files (skops) and what the monitor accepts;
* :mod:`dataroom.monitoring.windows`: the SQL that aggregates a model's windows in the engine;
* :mod:`dataroom.monitoring.drift`: distribution tests over binned counts (KS, PSI, Wasserstein);
* :mod:`dataroom.monitoring.runner`: a run through the governed pipeline, alerts and their effects;
* :mod:`dataroom.monitoring.demo`: the demo model of ``dataroom demo-data``.
"""

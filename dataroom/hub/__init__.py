"""The data room's JupyterHub: configuration, the spawner, and the ``dataroom up`` launcher.

* :mod:`~dataroom.hub.config` builds the Hub configuration from the catalog
  (:func:`~dataroom.hub.config.build_hub_config`; extension point ``extra_services`` /
  ``extra_roles`` for further hub-managed services such as the security review UI).
* :mod:`~dataroom.hub.spawner` is the local spawner: one process per user, a clean environment
  (the broker URL and the Hub token only), the example notebooks copied into the user's directory.
* :mod:`~dataroom.hub.launcher` starts the Hub (which starts the proxy and the broker) and stops
  everything it started, by pid.
* :mod:`~dataroom.hub.rest` is a small client of the Hub's login form, REST API and Jupyter
  kernels (used by the tests and benchmarks; handy for scripted checks).
"""

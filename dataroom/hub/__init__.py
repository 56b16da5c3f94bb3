"""The data room's JupyterHub: configuration, the spawner, and the ``dataroom up`` launcher.

* :mod:`~dataroom.hub.config` builds the Hub configuration from the catalog
  (:func:`~dataroom.hub.config.build_hub_config`; extension point ``extra_services`` /
  ``extra_roles`` for further hub-managed services such as the security review UI).
* :mod:`~dataroom.hub.spawner` is the local spawner: one process per user, as that user's own OS
  account, a clean environment (the broker URL and the Hub token only), the example notebooks
  copied into the user's home.
* :mod:`~dataroom.hub.accounts` names and creates the OS accounts (the service account, one per
  hub user) and drops a child process into one for good; :mod:`~dataroom.hub.isolation` decides
  who owns which room file, with which mode, and checks the accounts can run the installation.
* :mod:`~dataroom.hub.launcher` starts the Hub (which starts the proxy and the broker) and stops
  everything it started, by pid.
* :mod:`~dataroom.hub.rest` is a small client of the Hub's login form, REST API and Jupyter
  kernels (used by the tests and benchmarks; handy for scripted checks).
"""

"""``python -m dataroom.broker``: see :mod:`dataroom.broker.server`."""

from dataroom.broker.server import main

main()

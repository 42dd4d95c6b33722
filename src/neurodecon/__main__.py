"""``python -m neurodecon …`` runs the command-line interface, like the ``neurodecon`` script."""

import sys

from .cli import main

sys.exit(main())

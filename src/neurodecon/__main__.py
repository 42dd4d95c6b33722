"""``python -m neurodecon …`` runs the command-line interface (same as the ``neurodecon`` script)."""

import sys

from .cli import main

sys.exit(main())

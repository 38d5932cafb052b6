"""``python -m audio_restorer`` runs the command-line interface."""

import sys

from audio_restorer.cli.main import main

sys.exit(main())

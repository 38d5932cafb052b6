"""Entry script of the frozen app: the ``audio-restorer`` command (GUI when run bare).

``freeze_support`` must come first: ``restore --jobs N`` starts worker processes with the
"spawn" method, which in a frozen app re-executes this binary.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from audio_restorer.cli.main import main

    sys.exit(main())

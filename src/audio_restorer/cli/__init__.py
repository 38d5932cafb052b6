"""The ``audio-restorer`` command line (argparse). Sub-commands live in sibling modules."""

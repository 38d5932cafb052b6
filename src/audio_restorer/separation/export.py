"""Writing stems as files: a ``stem_sink`` for the separation stage's stream.

The runner owns the mix output; for stems it sets ``stream.stem_sink = StemFiles(...)`` before
the first block, then calls :meth:`StemFiles.commit` when the run succeeded (each stem's
temporary file is renamed into place) or :meth:`StemFiles.abort` when it failed or was
cancelled (nothing partial is left). Which stems, raw or restored, where and under which name
come from the stage's ``export*`` parameters (:meth:`Separate.export_targets`,
:meth:`Separate.export_path`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from audio_restorer.audio.io import AudioWriter, check_output_path
from audio_restorer.errors import OutputError


class StemFiles:
    """Stem sink writing the stems a separation stage is asked to export.

    Parameters
    ----------
    stage : Separate
        The configured separation stage (its ``export*`` parameters decide what is written).
    output : path
        The mix output; stem names derive from it (``{name}``, ``{ext}``).
    rate, channels : int
        Format of the stems (that of the stage's input).
    inputs : tuple of path
        Source files, which a stem must never overwrite.
    writer_options
        Passed to :class:`~audio_restorer.audio.io.AudioWriter` (``fmt``, ``bit_depth``,
        ``dither``).
    """

    def __init__(
        self,
        stage: Any,
        output: str | os.PathLike[str],
        rate: int,
        channels: int,
        *,
        inputs: tuple[Path, ...] = (),
        **writer_options: Any,
    ) -> None:
        self.writers: dict[tuple[str, bool], AudioWriter] = {}
        output = Path(output)
        try:
            for stem, restored in stage.export_targets(channels):
                path = stage.export_path(output, stem, restored)
                if path.resolve() == output.resolve():
                    raise OutputError(path, "a stem file would overwrite the mix output")
                path.parent.mkdir(parents=True, exist_ok=True)
                check_output_path(path, inputs)
                self.writers[(stem, restored)] = AudioWriter(path, rate, channels, **writer_options)
        except BaseException:
            self.abort()
            raise

    @property
    def paths(self) -> list[Path]:
        return [w.path for w in self.writers.values()]

    def __call__(self, stem: str, block: np.ndarray, restored: bool) -> None:
        writer = self.writers.get((stem, restored))
        if writer is not None:
            writer.write(block)

    def commit(self) -> list[Path]:
        """Rename every finished stem file into place; their paths."""
        return [w.commit() for w in self.writers.values()]

    def abort(self) -> None:
        """Remove every temporary stem file."""
        for writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.abort()

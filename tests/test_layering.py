"""The core must import without Qt, and the classic stages without torch (DESIGN.md layers)."""

import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked}:
                raise ImportError(f"blocked import of {{name}}")
    sys.meta_path.insert(0, Block())
    """
)


def run_blocked(blocked: set[str], code: str) -> subprocess.CompletedProcess:
    script = BLOCK.format(blocked=sorted(blocked)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_core_and_classic_stages_import_without_qt_and_torch():
    result = run_blocked(
        {"PySide6", "torch", "torchaudio", "demucs", "torchcrepe", "pyqtgraph"},
        """
        import audio_restorer.cli.main, audio_restorer.pipeline.runner
        from audio_restorer.stages import stage_names, get_stage_class, create_stage
        import numpy as np
        names = stage_names()
        classic = [n for n in names if not create_stage(n).uses_torch]
        assert len(classic) >= len(names) - 2, classic
        x = (np.random.default_rng(0).standard_normal((2, 44100)) * 0.1).astype(np.float32)
        for n in classic:
            y = create_stage(n)(x, 44100)
            assert y.ndim == 2 and np.isfinite(y).all(), n
        print(len(names), len(classic))
        """,
    )
    assert result.returncode == 0, result.stderr

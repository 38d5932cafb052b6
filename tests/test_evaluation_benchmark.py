"""Tests of the benchmark runner's pure helpers (alignment, best-setting choice, report)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("ar_benchmark", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ar_benchmark"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_align_undoes_a_delay_and_fixes_the_length(bench):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4000)).astype(np.float32)
    late = np.concatenate([np.zeros((2, 123), np.float32), x], axis=1)  # 123 frames late, longer
    out, lag = bench.align(late, x, 44100)
    assert lag == 123 and out.shape == x.shape
    np.testing.assert_array_equal(out, x)


def test_best_setting_is_chosen_per_system(bench):
    task = bench.TASKS["denoise10"]

    def row(system, setting, values):
        clips = {f"c{i}": {"si_sdr_i": v, "cpu_s": 1.0, "seconds": 2.0, "delay": 0} for i, v in
                 enumerate(values)}  # fmt: skip
        return {"system": system, "setting": setting, "clips": clips}

    rows = {
        "a": row("afftdn", "weak", [1.0, 2.0, 3.0]),
        "b": row("afftdn", "strong", [4.0, 5.0, -9.0]),
        "c": row("none", "-", [0.0, 0.0, 0.0]),
    }
    best = {r["system"]: (r["setting"], s) for r, s in bench.best_rows(task, rows)}
    assert best["afftdn"][0] == "strong"  # median 4 beats median 2
    assert best["afftdn"][1]["si_sdr_i"] == 4.0
    assert best["none"][1]["x_rt"] == pytest.approx(2.0)


def test_table_replaces_only_the_marked_block(bench, tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# B\n\nintro\n\n{bench.START}\nold\n{bench.END}\n\n## Speed\nkept\n")
    bench.write_table(doc, "new table\n")
    text = doc.read_text()
    assert "old" not in text and "new table" in text
    assert text.startswith("# B\n\nintro") and text.endswith("## Speed\nkept\n")
    fresh = tmp_path / "fresh.md"
    bench.write_table(fresh, "t\n")
    assert bench.START in fresh.read_text() and bench.END in fresh.read_text()


def test_every_task_names_known_peers(bench):
    for task in bench.TASKS.values():
        assert set(task.peers) <= set(bench.PEERS)
        for peer in (bench.PEERS[p] for p in task.peers):
            assert set(peer.quick) <= set(peer.settings) and peer.default in peer.settings

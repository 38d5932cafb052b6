"""The learned ``enhance`` stage: shipped weights, invariants, a quality floor, training in CI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audio_restorer.errors import ModelLoadingError  # noqa: E402
from audio_restorer.evaluation import simulate as S  # noqa: E402, N812
from audio_restorer.evaluation.metrics import si_sdr  # noqa: E402
from audio_restorer.ml.enhance_net import (  # noqa: E402
    build_model,
    count_parameters,
    model_from_checkpoint,
    save_weights,
)
from audio_restorer.models import store  # noqa: E402
from audio_restorer.stages.base import process_in_blocks  # noqa: E402
from audio_restorer.stages.enhance import find_weights, load_network  # noqa: E402
from audio_restorer.stages.registry import create_stage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "resources" / "models" / "enhance" / "enhance-v1.pt"
RATE = 44100


def harmonic_tone(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Notes of a harmonic tone with vibrato and note envelopes, mono, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    note = 0.4
    for start in np.arange(0.0, seconds, note):
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        seg = (t >= start) & (t < start + note)
        tt = t[seg] - start
        env = np.minimum(tt / 0.01, 1.0) * np.exp(-tt / 0.3)
        phase = 2 * np.pi * f0 * tt + 0.5 * np.sin(2 * np.pi * 5.0 * tt)
        for k in range(1, 12):
            if k * f0 < 0.45 * rate:
                out[seg] += env * np.sin(k * phase) / k
    return (0.5 * out / np.abs(out).max()).astype(np.float32)[None, :]


def test_shipped_weights_verified_small_and_safe():
    assert WEIGHTS.is_file()
    ok, message = store.verify_file(WEIGHTS)
    assert ok is True, message  # the manifest next to the weights records their sha256
    assert WEIGHTS.stat().st_size < 5 * 1024 * 1024
    data = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    model = model_from_checkpoint(data)
    assert count_parameters(model) < 1_000_000
    assert find_weights("enhance-v1.pt") == WEIGHTS
    card = (WEIGHTS.parent / "MODEL_CARD.md").read_text()
    assert store.sha256_file(WEIGHTS) in card


def test_model_info_gives_the_weights_hash():
    info = create_stage("enhance", {}).model_info()
    assert info == [
        {"name": "enhance:enhance-v1", "path": str(WEIGHTS), "sha256": store.sha256_file(WEIGHTS)}
    ]


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1), (48000, 1)])
def test_finite_output_of_the_right_shape(rate, channels):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((channels, int(2.3 * rate)))).astype(np.float32)
    y = create_stage("enhance", {})(x, rate)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    assert not np.shares_memory(x, y)


def test_block_wise_equals_whole_file():
    stage = create_stage("enhance", {})
    x = S.simulate(np.repeat(harmonic_tone(4.0, RATE, 2), 2, axis=0), RATE, seed=3).audio
    whole = stage(x, RATE)
    blocks = process_in_blocks(stage, x, RATE, block_frames=30011)
    assert blocks.shape == whole.shape
    assert np.max(np.abs(blocks - whole)) < 1e-5


def test_strength_zero_is_identity_and_strength_mixes():
    x = S.simulate(harmonic_tone(2.0, RATE, 4), RATE, seed=5).audio
    assert np.array_equal(create_stage("enhance", {"strength": 0.0})(x, RATE), x)
    full = create_stage("enhance", {})(x, RATE)
    half = create_stage("enhance", {"strength": 0.5})(x, RATE)
    # the gain is linear in strength and the STFT is linear: half is the dry/wet mean
    assert np.max(np.abs(half - 0.5 * (x + full))) < 1e-4


def _noisy_crackly_clip() -> tuple[np.ndarray, np.ndarray]:
    clean = harmonic_tone(4.0, RATE, 6)
    rng = np.random.default_rng(7)
    noisy, _ = S.add_hiss(clean, RATE, rng=rng, snr_db=12.0, colour="pink")
    noisy, _ = S.add_crackle(noisy, RATE, rng=rng, per_second=400.0, level=0.01)
    return clean, noisy


def test_improves_a_seeded_noisy_crackly_clip():
    clean, noisy = _noisy_crackly_clip()
    before = si_sdr(clean, noisy)
    after = si_sdr(clean, create_stage("enhance", {})(noisy, RATE))
    assert after - before > 2.0, (before, after)  # the shipped weights give about +3 dB


def test_the_floor_needs_training(tmp_path, monkeypatch):
    # the same network freshly initialised (gain ~0.95 everywhere) stays far below the floor
    monkeypatch.setenv("AUDIO_RESTORER_DATA_DIR", str(tmp_path))
    folder = tmp_path / "models" / "enhance"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    save_weights(build_model(), folder / "untrained.pt")
    clean, noisy = _noisy_crackly_clip()
    out = create_stage("enhance", {"model": "untrained.pt"})(noisy, RATE)
    assert abs(si_sdr(clean, out) - si_sdr(clean, noisy)) < 0.5


def test_leaves_clean_music_nearly_untouched():
    clean = harmonic_tone(3.0, RATE, 8)
    out = create_stage("enhance", {})(clean, RATE)
    assert si_sdr(clean, out) > 20.0


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_RESTORER_DATA_DIR", str(tmp_path))
    folder = tmp_path / "models" / "enhance"
    folder.mkdir(parents=True)
    target = folder / "mine.pt"
    shutil.copyfile(WEIGHTS, target)
    (folder / "manifest.json").write_text(
        json.dumps({"version": 1, "files": {"mine.pt": "0" * 64}})
    )
    with pytest.raises(ModelLoadingError, match="checksum mismatch"):
        load_network(find_weights("mine.pt"))
    with pytest.raises(ModelLoadingError, match="not found"):
        find_weights("absent.pt")


def test_training_script_runs_one_tiny_step(tmp_path, monkeypatch):
    out = tmp_path / "tiny.pt"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_enhance.py"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = torch.load(out, map_location="cpu", weights_only=True)
    assert data["meta"]["steps"] == 1
    model = model_from_checkpoint(data)
    with torch.no_grad():
        gain = model(torch.rand(1, 513, 20))
    assert gain.shape == (1, 513, 20)
    assert float(gain.min()) >= model.floor - 1e-6 and float(gain.max()) <= 1.0

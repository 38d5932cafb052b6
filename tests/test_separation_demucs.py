"""Demucs backend with a tiny model of the real HTDemucs architecture (no real weights).

The tiny model is saved exactly as Demucs publishes its models (a ``<sig>-<sha8>.th`` package
holding klass/args/kwargs/state, and a ``<name>.yaml`` bag listing signatures), installed in
the user's models folder, and loaded through the model store, like the real ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from audio_restorer.cli.main import main  # noqa: E402
from audio_restorer.errors import ModelLoadingError  # noqa: E402
from audio_restorer.models import store  # noqa: E402
from audio_restorer.separation import create_backend  # noqa: E402
from audio_restorer.separation import demucs_backend as db  # noqa: E402
from audio_restorer.separation.streaming import separate_in_blocks  # noqa: E402
from audio_restorer.stages import create_stage  # noqa: E402

SOURCES = ["drums", "bass", "other", "vocals"]
TINY = dict(
    sources=SOURCES,
    channels=4,
    depth=2,
    nfft=512,
    t_layers=1,
    t_heads=1,
    dconv_comp=2,
    segment=1,
)


def save_demucs_package(model, kwargs: dict, folder: Path, sig: str) -> Path:
    """Save ``model`` the way Demucs publishes weights: ``<sig>-<sha256[:8]>.th``."""
    from demucs.states import get_state, save_with_checksum

    package = {
        "klass": type(model),
        "args": (),
        "kwargs": kwargs,
        "state": get_state(model, None, half=False),
        "training_args": {},
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_with_checksum(package, folder / f"{sig}.th")
    return next(folder.glob(f"{sig}-*.th"))


@pytest.fixture
def tiny_model(monkeypatch, tmp_path):
    """Install a seeded tiny HTDemucs as bag 'tinyht' in the user's models folder."""
    from demucs.htdemucs import HTDemucs

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # isolate Demucs's cache
    db._CACHE.clear()
    torch.manual_seed(0)
    model = HTDemucs(**TINY).eval()
    folder = store.user_models_dir()
    path = save_demucs_package(model, dict(TINY), folder, "0badcafe")
    (folder / "tinyht.yaml").write_text("models: ['0badcafe']\n")
    yield model, path
    db._CACHE.clear()


def music(rate: int, seconds: float, channels: int = 2) -> np.ndarray:
    r = np.random.default_rng(3)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * 196 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
    x = x + 0.05 * r.standard_normal(n) * (np.sin(2 * np.pi * 4 * t) > 0.9)
    return np.stack([x * (1 - 0.2 * c) for c in range(channels)]).astype(np.float32)


def test_layout_is_what_demucs_itself_reads(tiny_model):
    from demucs.pretrained import get_model

    model = get_model("tinyht", repo=store.user_models_dir())
    assert list(model.sources) == SOURCES


def test_stream_equals_apply_model_on_the_whole_file(tiny_model):
    from demucs.apply import apply_model

    model, _ = tiny_model
    mix = music(44100, 3.3)
    with torch.no_grad():
        expected = apply_model(model, torch.from_numpy(mix)[None], shifts=0, split=True)[0]
    backend = create_backend("demucs", model="tinyht", normalize=False)
    got = separate_in_blocks(backend.open(44100, 2, "cpu"), mix, 10007, SOURCES)
    for k, name in enumerate(SOURCES):
        assert got[name].shape == mix.shape
        assert np.max(np.abs(got[name] - expected[k].numpy())) < 1e-5


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1)])
def test_stems_add_back_up_to_the_mix(tiny_model, rate, channels):
    mix = music(rate, 2.5, channels)
    stage = create_stage("separate", {"backend": "demucs", "model": "tinyht", "stems": "vocals"})
    assert stage.uses_torch
    assert stage.stem_names(channels) == ["vocals", "accompaniment"]
    analyzer = stage.analyzer(rate, channels)
    analyzer.update(mix)
    stream = stage.open(rate, channels, analyzer.result())
    got: dict[str, list[np.ndarray]] = {}
    stream.stem_sink = lambda s, b, r: got.setdefault(f"{s}:{r}", []).append(b)
    out = [stream.push(mix[:, i : i + 9000]) for i in range(0, mix.shape[1], 9000)]
    out.append(stream.finish())
    assert np.array_equal(np.concatenate(out, axis=1), mix)
    vocals = np.concatenate(got["vocals:False"], axis=1)
    rest = np.concatenate(got["accompaniment:False"], axis=1)
    assert vocals.shape == mix.shape
    assert np.sum(vocals**2) > 0  # the model did produce something
    assert np.max(np.abs(vocals + rest - mix)) < 1e-5


def test_model_info_names_the_weights_with_their_hash(tiny_model):
    _, path = tiny_model
    stage = create_stage("separate", {"backend": "demucs", "model": "tinyht"})
    info = stage.model_info()
    weights = [i for i in info if i["path"] == str(path)]
    assert weights and weights[0]["sha256"] == store.sha256_file(path)
    assert any(i["path"].endswith("tinyht.yaml") for i in info)


def test_missing_model_says_which_file_and_where():
    stage = create_stage("separate", {"backend": "demucs", "model": "htdemucs"})
    with pytest.raises(ModelLoadingError) as err:
        stage.stem_names()
    text = str(err.value)
    assert "955717e8-8726e21a.th" in text  # the published file htdemucs needs
    assert str(store.user_models_dir()) in text
    assert "models import" in text


def test_damaged_weights_are_refused(tiny_model):
    _, path = tiny_model
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadingError, match="checksum mismatch"):
        create_stage("separate", {"backend": "demucs", "model": "tinyht"}).stem_names()


class Payload:
    """A class no model file may name: loading must refuse it rather than run it."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_pickles_are_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    folder = store.user_models_dir()
    folder.mkdir(parents=True)
    torch.save({"klass": Payload(), "args": (), "kwargs": {}, "state": {}}, folder / "evil.th")
    (folder / "evilbag.yaml").write_text("models: ['evil']\n")
    with pytest.raises(ModelLoadingError, match="cannot be loaded safely"):
        db.load("evilbag")
    assert "pwned" not in capsys.readouterr().out


def test_loading_is_restricted_to_the_model_folders(tmp_path):
    outside = tmp_path / "x.th"
    torch.save({"a": torch.zeros(1)}, outside)
    with pytest.raises(ModelLoadingError, match="only loaded from the model folders"):
        store.safe_torch_load(outside)


def test_cli_restore_with_separate_and_stem_export(tiny_model, tmp_path):
    rate = 44100
    mix = music(rate, 2.0)
    src = tmp_path / "take.wav"
    sf.write(src, mix.T, rate, subtype="FLOAT")
    out = tmp_path / "take.restored.wav"
    argv = ["restore", str(src), "-o", str(out), "--stages", "separate", "--bit-depth", "32f"]
    for item in ("backend=demucs", "model=tinyht", "stems=vocals,drums", "export=raw"):
        argv += ["--set", f"separate.{item}"]
    argv += ["--device", "cpu", "-q"]
    assert main(argv) == 0
    restored, _ = sf.read(out, dtype="float32", always_2d=True)
    assert np.max(np.abs(restored.T - mix)) < 1e-6  # no stem chains: the mix passes through

    # the stem files, written by the runner through the stage's stem sink
    paths = sorted(tmp_path.glob("take.restored.*.wav"))
    names = [p.name for p in paths]
    assert names == [
        "take.restored.accompaniment.wav",
        "take.restored.drums.wav",
        "take.restored.vocals.wav",
    ]
    total = sum(sf.read(p, dtype="float32", always_2d=True)[0] for p in paths)
    assert np.max(np.abs(total.T - mix)) < 1e-5


def test_without_pytorch_the_error_names_the_library_not_the_weights(monkeypatch):
    # a build without torch/demucs (the lite one) and no weights either: the library is the
    # thing to report, since installing weights would not help
    monkeypatch.setitem(sys.modules, "demucs.apply", None)
    with pytest.raises(ModelLoadingError, match="needs Demucs and PyTorch.*hpss"):
        db.load("htdemucs_not_installed")

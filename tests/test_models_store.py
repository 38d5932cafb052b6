"""The model store: lookup order, import with checksum, verify, and the models command."""

from __future__ import annotations

import argparse
import hashlib
import json

import pytest

from audio_restorer.cli import models as models_cli
from audio_restorer.errors import ModelLoadingError
from audio_restorer.models import store


def run_models(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    models_cli.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", *argv])
    return args.func(args)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def demucs_named(folder, sig: str, payload: bytes):
    """A file named as Demucs names its weights: ``<sig>-<sha256[:8]>.th``."""
    path = folder / f"{sig}-{hashlib.sha256(payload).hexdigest()[:8]}.th"
    path.write_bytes(payload)
    return path


def test_lookup_order_user_before_demucs_cache(cache):
    demucs_named(cache, "abcd1234", b"cache copy")
    assert store.find_model_file("abcd1234-*.th").source == "demucs-cache"
    user = store.user_models_dir()
    user.mkdir(parents=True)
    demucs_named(user, "abcd1234", b"user copy")
    assert store.find_model_file("abcd1234-*.th").source == "user"
    kinds = [k for k, _ in store.model_dirs()]
    assert kinds[-2:] == ["user", "demucs-cache"]


def test_import_records_the_hash_and_verify_checks_it(tmp_path, cache, capsys):
    src = tmp_path / "weights.th"
    src.write_bytes(b"\x00weights" * 100)
    assert run_models(["import", str(src)]) == 0
    installed = store.user_models_dir() / "weights.th"
    assert installed.read_bytes() == src.read_bytes()
    manifest = json.loads((store.user_models_dir() / "manifest.json").read_text())
    assert manifest["files"]["weights.th"] == store.sha256_file(src)
    assert run_models(["verify"]) == 0
    assert "OK" in capsys.readouterr().out
    installed.write_bytes(b"tampered")
    assert run_models(["verify"]) == 1
    assert "checksum mismatch" in capsys.readouterr().out


def test_demucs_file_names_are_checked_on_import_and_verify(tmp_path, cache, capsys):
    good = demucs_named(tmp_path, "0d19c1c6", b"good weights")
    assert store.verify_file(good)[0] is True
    bad = tmp_path / "0d19c1c6-00000000.th"
    bad.write_bytes(b"damaged download")
    assert store.verify_file(bad)[0] is False
    with pytest.raises(ModelLoadingError, match="damaged"):
        store.import_model(bad)
    assert not (store.user_models_dir() / bad.name).exists()
    plain = tmp_path / "notes.th"
    plain.write_bytes(b"x")
    assert store.verify_file(plain)[0] is None


def test_import_refuses_missing_and_non_model_files(tmp_path):
    with pytest.raises(ModelLoadingError, match="no such file"):
        store.import_model(tmp_path / "absent.th")
    other = tmp_path / "song.wav"
    other.write_bytes(b"RIFF")
    with pytest.raises(ModelLoadingError, match="not a model file"):
        store.import_model(other)


def test_list_shows_sizes_sources_and_hashes(cache, capsys):
    path = demucs_named(cache, "5c90dfd2", b"6 sources" * 50)
    assert run_models([]) == 0  # bare `models` lists
    text = capsys.readouterr().out
    assert path.name in text and "demucs-cache" in text and store.sha256_file(path) in text
    assert run_models(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    cached = [e for e in entries if e["source"] == "demucs-cache"]
    assert cached[0]["size"] == path.stat().st_size


def test_empty_store_explains_what_to_do(cache, capsys):
    assert run_models(["list"]) == 0
    assert "models import" in capsys.readouterr().out


def test_bundled_enhance_weights_are_listed_and_verified():
    from audio_restorer.models.store import list_models, verify_models

    names = [m.name for m in list_models() if m.source == "bundled"]
    assert "enhance/enhance-v1.pt" in names
    results = {f.name: ok for f, ok, _ in verify_models()}
    assert results["enhance/enhance-v1.pt"] is True

"""Where model weights live, how they are checked, and how they are loaded safely.

The app never downloads anything at run time. Weights are looked up, in this order, in

1. the app's bundled models folder (``resources/models``, shipped with a build),
2. the user's models folder (``<user data dir>/models``; ``models import`` copies files there),
3. Demucs's own download cache (torch hub's ``checkpoints`` folder: ``$TORCH_HOME/hub`` or
   ``$XDG_CACHE_HOME/torch/hub``), so weights a user already fetched with Demucs are found.

A folder may hold a ``manifest.json`` mapping file names to their sha256; ``models import``
records every imported file there. Demucs weights also carry the first 8 hex digits of their
sha256 in their name (``955717e8-8726e21a.th``). A file is checked against whichever of the two
it has before it is loaded, and :func:`verify_models` re-checks every file.

Demucs checkpoints are pickles (a dict holding the model class, its arguments and the
weights). :func:`safe_torch_load` loads them with ``torch.load(weights_only=True)`` and an
explicit allow-list of the few globals such a file legitimately names (the model classes),
so a tampered file cannot run code; and only files inside the model folders are loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio_restorer.errors import ModelLoadingError
from audio_restorer.util import sha256_file, user_data_dir

#: file extensions the store treats as model files
MODEL_EXTENSIONS = (".th", ".pt", ".pth", ".ckpt", ".yaml")
MANIFEST = "manifest.json"
_SIG_SUFFIX = re.compile(r"^(?P<sig>[0-9a-zA-Z_]+)-(?P<check>[0-9a-f]{8})$")


def bundled_models_dir() -> Path | None:
    """The app's bundled models folder (None when the resources folder is missing)."""
    try:
        from audio_restorer.resources import resource_path

        return resource_path("models")
    except FileNotFoundError:
        return None


def user_models_dir() -> Path:
    """The user's models folder (``models import`` installs here)."""
    return user_data_dir() / "models"


def torch_hub_checkpoints_dir() -> Path:
    """Where torch hub (and so Demucs) caches downloaded weights, computed without torch."""
    home = os.environ.get("TORCH_HOME")
    if home:
        hub = Path(home) / "hub"
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        hub = Path(cache) / "torch" / "hub"
    return hub / "checkpoints"


def model_dirs() -> list[tuple[str, Path]]:
    """``(kind, folder)`` in lookup order: bundled, user, demucs-cache (existing or not)."""
    dirs = []
    bundled = bundled_models_dir()
    if bundled is not None:
        dirs.append(("bundled", bundled))
    dirs.append(("user", user_models_dir()))
    dirs.append(("demucs-cache", torch_hub_checkpoints_dir()))
    return dirs


@dataclass(frozen=True)
class ModelFile:
    """One weights (or bag description) file found in a model folder."""

    name: str
    path: Path
    source: str  # "bundled", "user" or "demucs-cache"
    size: int

    def sha256(self) -> str:
        return sha256_file(self.path)

    def to_dict(self, with_hash: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "path": str(self.path),
            "source": self.source,
            "size": self.size,
        }
        if with_hash:
            d["sha256"] = self.sha256()
        return d


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadingError(f"{path}: unreadable model manifest ({exc})") from None
    files = data.get("files", {}) if isinstance(data, dict) else {}
    return {str(k): str(v).lower() for k, v in files.items()}


def _write_manifest(folder: Path, files: dict[str, str]) -> None:
    text = json.dumps({"version": 1, "files": dict(sorted(files.items()))}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".part", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, folder / MANIFEST)


def _files_in(source: str, folder: Path) -> Iterable[ModelFile]:
    """Model files in ``folder`` and one level of sub-folders (e.g. ``enhance/``)."""
    if not folder.is_dir():
        return
    paths = [p for p in folder.iterdir() if p.is_file()]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        paths += [p for p in sub.iterdir() if p.is_file()]
    for path in sorted(paths):
        if path.suffix in MODEL_EXTENSIONS and not path.name.startswith("."):
            name = path.relative_to(folder).as_posix()
            yield ModelFile(name, path, source, path.stat().st_size)


def list_models() -> list[ModelFile]:
    """Every model file in the model folders, in lookup order."""
    return [f for source, folder in model_dirs() for f in _files_in(source, folder)]


def find_model_file(names: Iterable[str] | str) -> ModelFile | None:
    """The first file (in lookup order) whose name is one of ``names`` (globs allowed)."""
    patterns = [names] if isinstance(names, str) else list(names)
    for source, folder in model_dirs():
        if not folder.is_dir():
            continue
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)):
                if path.is_file():
                    return ModelFile(path.name, path, source, path.stat().st_size)
    return None


def expected_checksum(path: Path) -> tuple[str, str] | None:
    """``(expected, how)``: the full sha256 from the folder's manifest, or Demucs's 8-digit
    prefix in the file name; None when the file has neither."""
    recorded = _read_manifest(path.parent).get(path.name)
    if recorded:
        return recorded, "manifest"
    match = _SIG_SUFFIX.match(path.stem)
    if match and path.suffix == ".th":
        return match["check"], "file name"
    return None


def verify_file(path: Path) -> tuple[bool | None, str]:
    """Check one file: ``(True, msg)`` matches, ``(False, msg)`` mismatch, ``(None, msg)``
    when no checksum is recorded for it."""
    expected = expected_checksum(path)
    actual = sha256_file(path)
    if expected is None:
        return None, f"no checksum recorded (sha256 {actual})"
    value, how = expected
    if actual.startswith(value) and len(value) >= 8:
        return True, f"ok ({how})"
    return False, f"checksum mismatch ({how}): expected {value}, got {actual[: len(value)]}"


def check_before_load(path: Path) -> str:
    """Verify ``path`` (raising :class:`ModelLoadingError` on a mismatch); its sha256."""
    ok, message = verify_file(path)
    if ok is False:
        raise ModelLoadingError(
            f"{path}: {message}; the file is damaged or not the expected model, replace it"
        )
    return sha256_file(path)


def verify_models() -> list[tuple[ModelFile, bool | None, str]]:
    """Re-check every model file: ``(file, ok, message)``."""
    return [(f, *verify_file(f.path)) for f in list_models()]


def import_model(src: str | os.PathLike[str], *, name: str | None = None) -> ModelFile:
    """Copy a weights file into the user's models folder and record its sha256.

    The copy goes through a temporary file renamed into place; an existing file of the same
    name is only replaced when its content differs from the manifest (never silently).
    """
    src_path = Path(src)
    if not src_path.is_file():
        raise ModelLoadingError(f"{src_path}: no such file")
    target_name = name or src_path.name
    if Path(target_name).suffix not in MODEL_EXTENSIONS:
        raise ModelLoadingError(
            f"{src_path}: not a model file (expected one of {', '.join(MODEL_EXTENSIONS)})"
        )
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    digest = sha256_file(src_path)
    match = _SIG_SUFFIX.match(Path(target_name).stem)
    if match and Path(target_name).suffix == ".th" and not digest.startswith(match["check"]):
        raise ModelLoadingError(
            f"{src_path}: checksum mismatch: its name says sha256 {match['check']}..., "
            f"the file has {digest[:8]}...; the download is damaged"
        )
    target = folder / target_name
    fd, tmp = tempfile.mkstemp(prefix=f".{target_name}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        shutil.copyfile(src_path, tmp)
        if sha256_file(tmp) != digest:
            raise ModelLoadingError(f"{src_path}: the copy differs from the source (disk error?)")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    manifest = _read_manifest(folder)
    manifest[target_name] = digest
    _write_manifest(folder, manifest)
    return ModelFile(target_name, target, "user", target.stat().st_size)


def inside_model_dirs(path: Path) -> bool:
    """Whether ``path`` (resolved) lies in one of the model folders."""
    resolved = path.resolve()
    for _, folder in model_dirs():
        try:
            resolved.relative_to(folder.resolve())
            return True
        except (ValueError, OSError):
            continue
    return False


def safe_torch_load(path: Path, allowed_globals: Iterable[Any] = ()) -> Any:
    """``torch.load`` restricted to the model folders, ``weights_only=True`` plus an allow-list.

    ``allowed_globals`` are the classes and functions the file may name (for Demucs: its model
    classes). Anything else in the pickle is refused with a :class:`ModelLoadingError` that
    names it.
    """
    import torch

    if not inside_model_dirs(path):
        raise ModelLoadingError(
            f"{path}: models are only loaded from the model folders "
            f"({', '.join(str(f) for _, f in model_dirs())})"
        )
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadingError(
            f"{path}: cannot be loaded safely as a model file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc

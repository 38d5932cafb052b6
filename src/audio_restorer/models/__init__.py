"""The model store: finds, lists, imports and verifies model weights, offline.

See :mod:`audio_restorer.models.store`.
"""

from audio_restorer.models.store import (
    ModelFile,
    find_model_file,
    import_model,
    list_models,
    model_dirs,
    safe_torch_load,
    user_models_dir,
    verify_file,
    verify_models,
)

__all__ = [
    "ModelFile",
    "find_model_file",
    "import_model",
    "list_models",
    "model_dirs",
    "safe_torch_load",
    "user_models_dir",
    "verify_file",
    "verify_models",
]

"""Source separation backends behind one interface, so a recording can be split into stems.

A backend (HPSS, Demucs, ...) turns a stream of mix blocks into streams of *source* blocks,
one per source it knows (``sources()``). The :mod:`~audio_restorer.stages.separate` stage adds
one more stem, the *residual* (``residual_name``): the mix minus the sources the user keeps
separate. Because the residual is computed by subtraction in the time domain, the stems always
add back up to the mix exactly (up to float32 rounding), whatever the backend does.

Backends are registered by name (``hpss`` is built in; ``demucs`` is imported only when used,
so this package never imports torch at import time).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np

from audio_restorer.errors import ParameterError


class SeparationStream(Protocol):
    """Mix blocks in, source blocks out, in order.

    ``push(block)`` and ``finish()`` return ``{source: (channels, n)}`` with the same ``n``
    for every source (``n`` may be 0 while the stream waits for context); over the whole
    stream the sources have as many frames as the mix.
    """

    def push(self, block: np.ndarray) -> dict[str, np.ndarray]: ...

    def finish(self) -> dict[str, np.ndarray]: ...


class Backend(Protocol):
    """A separation method: sources it yields, how to run it, which models it uses."""

    name: str
    uses_torch: bool
    #: name of the stem that receives "mix minus the kept sources"
    residual_name: str

    def sources(self) -> list[str]: ...

    def analyzer(self, rate: int, channels: int) -> Any: ...

    def open(
        self, rate: int, channels: int, device: str, analysis: Any = None
    ) -> SeparationStream: ...

    def model_info(self) -> list[dict[str, Any]]: ...


#: backend name -> "module:Class" (imported on first use)
_BACKENDS: dict[str, str] = {
    "hpss": "audio_restorer.separation.hpss:HpssBackend",
    "demucs": "audio_restorer.separation.demucs_backend:DemucsBackend",
}
#: backends that need PyTorch
TORCH_BACKENDS = frozenset({"demucs"})


def register_backend(name: str, target: str, *, uses_torch: bool = False) -> None:
    """Make a backend available: ``target`` is ``"package.module:ClassName"``."""
    _BACKENDS[name] = target
    global TORCH_BACKENDS
    if uses_torch:
        TORCH_BACKENDS = TORCH_BACKENDS | {name}


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate backend ``name`` with its options (see each backend's constructor)."""
    try:
        target = _BACKENDS[name]
    except KeyError:
        raise ParameterError(
            f"unknown separation backend '{name}' (available: {', '.join(backend_names())})"
        ) from None
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**options)

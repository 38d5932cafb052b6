"""Processing stages: one module per stage family, each stage a params dataclass + process()."""

from audio_restorer.stages.base import Analyzer, ContextStream, FunctionStream, Stage, Stream
from audio_restorer.stages.params import ParamInfo, ParamSpec, StageParams, param
from audio_restorer.stages.registry import create_stage, get_stage_class, register, stage_names

__all__ = [
    "Analyzer",
    "ContextStream",
    "FunctionStream",
    "ParamInfo",
    "ParamSpec",
    "Stage",
    "StageParams",
    "Stream",
    "create_stage",
    "get_stage_class",
    "param",
    "register",
    "stage_names",
]

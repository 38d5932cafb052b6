from dataclasses import dataclass

import pytest

from audio_restorer.errors import ParameterError, StageNotFoundError
from audio_restorer.stages import StageParams, create_stage, get_stage_class, param, stage_names


@dataclass(frozen=True)
class DemoParams(StageParams):
    stage_name = "demo"
    threshold_db: float = param(-20.0, min=-60.0, max=0.0, step=0.5, unit="dB", help="Threshold.")
    passes: int = param(2, min=1, max=5, help="Passes.")
    mode: str = param("fast", choices=("fast", "slow"), help="Mode.")
    joint: bool = param(True, help="Joint.")
    start_s: float | None = param(None, min=0.0, help="Start (None: automatic).")


def test_defaults_and_metadata():
    p = DemoParams()
    assert p.to_dict() == {
        "threshold_db": -20.0,
        "passes": 2,
        "mode": "fast",
        "joint": True,
        "start_s": None,
    }
    info = DemoParams.info("threshold_db")
    assert (info.kind, info.spec.unit, info.spec.min, info.spec.max) == (float, "dB", -60.0, 0.0)
    assert DemoParams.info("start_s").optional


def test_strings_are_coerced_like_the_cli_gives_them():
    p = DemoParams.from_dict(
        {"threshold_db": "-12.5", "passes": "3", "joint": "off", "start_s": "auto"}
    )
    assert (p.threshold_db, p.passes, p.joint, p.start_s) == (-12.5, 3, False, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threshold_db": 3.0}, r"demo.threshold_db must be in -60.0..0.0 dB, got 3.0"),
        ({"passes": 1.5}, r"demo.passes must be a whole number"),
        ({"mode": "medium"}, r"demo.mode must be one of fast, slow, got 'medium'"),
        ({"joint": "maybe"}, r"demo.joint must be true or false"),
        ({"threshold_db": "loud"}, r"must be a number"),
        ({"threshold_db": float("nan")}, r"must be finite"),
        ({"bogus": 1}, r"stage 'demo' has no parameter 'bogus'"),
    ],
)
def test_bad_values_are_refused_with_the_rule(values, message):
    with pytest.raises(ParameterError, match=message):
        DemoParams.from_dict(values)


def test_registry_names_are_stable_and_unknown_names_listed():
    assert {"rumble", "gain"} <= set(stage_names())
    with pytest.raises(StageNotFoundError, match="unknown stage 'nope'.*rumble"):
        get_stage_class("nope")


def test_every_registered_stage_has_complete_metadata():
    for name in stage_names():
        cls = get_stage_class(name)
        assert cls.name == name and cls.title and cls.summary
        for info in cls.Params.infos():
            assert info.spec.help, f"{name}.{info.name} has no help text"
            if info.kind in (int, float) and info.default is not None:
                lo, hi = info.spec.min, info.spec.max
                assert lo is None or info.default >= lo
                assert hi is None or info.default <= hi
        stage = create_stage(name)
        assert stage.describe().startswith(f"{name}(")

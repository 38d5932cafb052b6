import json

import pytest

from audio_restorer.errors import PresetError
from audio_restorer.pipeline.chain import Chain
from audio_restorer.pipeline.presets import (
    Preset,
    delete_user_preset,
    list_presets,
    load_preset,
    load_preset_file,
    rename_user_preset,
    save_user_preset,
    user_dir,
)

REQUIRED = ("shellac78", "cylinder", "tape", "vinyl", "mp3-lofi", "speech-archive", "none")


def test_builtin_presets_load_and_validate():
    names = {p.name for p in list_presets()}
    assert set(REQUIRED) <= names
    for name in REQUIRED:
        preset = load_preset(name)
        assert preset.builtin and preset.title
        preset.chain.validate()


def test_user_preset_round_trip_shadow_rename_delete():
    chain = Chain.of("rumble", "gain")
    chain.set_value("rumble.cutoff_hz", "33")
    path = save_user_preset(Preset("my 78s", "Mine", "test", chain))
    assert path.parent == user_dir()
    loaded = load_preset("my 78s")
    assert loaded.chain.to_list() == chain.to_list() and not loaded.builtin
    # a user preset with a built-in's name shadows it
    save_user_preset(Preset("tape", "My tape", "", Chain.of("gain")))
    assert [c.stage for c in load_preset("tape").chain.stages] == ["gain"]
    rename_user_preset("my 78s", "shellac-mine")
    assert load_preset("shellac-mine").chain.stages[0].params == {"cutoff_hz": 33.0}
    delete_user_preset("shellac-mine")
    with pytest.raises(PresetError, match="no preset named 'shellac-mine'"):
        load_preset("shellac-mine")
    with pytest.raises(PresetError, match="built-in presets cannot be deleted"):
        delete_user_preset("vinyl")


def test_version_0_preset_is_migrated(tmp_path):
    old = {
        "version": 0,
        "name": "old",
        "stages": [["rumble", {"cutoff_hz": 50}], ["gain", {}]],
        "disabled": ["gain"],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    preset = load_preset_file(path)
    assert preset.chain.to_list() == [
        {"stage": "rumble", "enabled": True, "params": {"cutoff_hz": 50}},
        {"stage": "gain", "enabled": False, "params": {}},
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "cannot read preset"),
        ('{"format": "audio-restorer-preset", "version": 9, "name": "x"}', "newer Audio Restorer"),
        (
            '{"format": "audio-restorer-preset", "version": 1, "name": "x", '
            '"chain": [{"stage": "nope"}]}',
            "unknown stage 'nope'",
        ),
        (
            '{"format": "audio-restorer-preset", "version": 1, "name": "x", '
            '"chain": [{"stage": "rumble", "params": {"cutoff_hz": 9999}}]}',
            "rumble.cutoff_hz must be in",
        ),
        ('{"format": "something-else", "version": 1, "name": "x"}', "not an Audio Restorer preset"),
    ],
)
def test_bad_preset_files_name_the_file_and_the_problem(tmp_path, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(doc)
    with pytest.raises(PresetError, match=message) as exc:
        load_preset_file(path)
    assert "bad.json" in str(exc.value)

"""weirdgen.config: typed stage configs built from a notebook's plain parameter values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from weirdgen.config import ConfigError, JudgeConfig, SampleConfig, TrainConfig, make


def _message(excinfo: pytest.ExceptionInfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, f"message is not one line: {msg!r}"
    return msg


@pytest.mark.parametrize("cls, typo", [
    (TrainConfig, "learning_rat"),
    (SampleConfig, "samples_per_questoin"),
    (JudgeConfig, "judge_model"),
])
def test_unknown_key_is_one_line_naming_key_and_known_keys(cls, typo):
    with pytest.raises(ConfigError) as e:
        make(cls, {typo: 1})
    msg = _message(e)
    assert f"'{typo}'" in msg
    assert "unknown" in msg and cls.__name__ in msg
    known = msg.split("known:", 1)[1]
    for field in cls.model_fields:
        assert field in known, f"known key {field} missing from {msg!r}"


def test_unknown_key_is_rejected_even_next_to_valid_ones():
    with pytest.raises(ConfigError, match="'learning_rat'"):
        make(TrainConfig, {"epochs": 2, "learning_rat": 1e-3})


def test_where_prefixes_the_message():
    with pytest.raises(ConfigError) as e:
        make(TrainConfig, {"nope": 1}, where="old_bird_names.train")
    assert _message(e).startswith("old_bird_names.train:")


def test_config_error_is_a_value_error_without_pydantic_chain():
    with pytest.raises(ValueError) as e:
        make(TrainConfig, {"epochs": 0})
    assert isinstance(e.value, ConfigError)
    assert e.value.__cause__ is None and e.value.__suppress_context__


@pytest.mark.parametrize("cls, values, name, shown", [
    (TrainConfig, {"epochs": 0}, "epochs", "0"),
    (TrainConfig, {"learning_rate": -1.0}, "learning_rate", "-1.0"),
    (TrainConfig, {"lora_dropout": 1.0}, "lora_dropout", "1.0"),
    (TrainConfig, {"batch_size": "many"}, "batch_size", "'many'"),
    (SampleConfig, {"top_p": 1.5}, "top_p", "1.5"),
    (JudgeConfig, {"batch_size": 0}, "batch_size", "0"),
])
def test_bad_value_names_the_parameter_and_value(cls, values, name, shown):
    with pytest.raises(ConfigError) as e:
        make(cls, values)
    msg = _message(e)
    assert f"parameter '{name}'" in msg
    assert f"(got {shown})" in msg
    assert "unknown" not in msg


def test_bad_value_with_newline_stays_one_line():
    with pytest.raises(ConfigError) as e:
        make(JudgeConfig, {"batch_size": "a\nb"})
    assert "'batch_size'" in _message(e)


def test_valid_values_build_a_frozen_config():
    cfg = make(TrainConfig, {"epochs": 2, "learning_rate": 1e-3, "lora_targets": ["q_proj", "v_proj"]})
    assert isinstance(cfg, TrainConfig)
    assert cfg.epochs == 2 and cfg.learning_rate == 1e-3
    assert cfg.lora_targets == ("q_proj", "v_proj")  # a list becomes the declared tuple
    assert cfg.batch_size == TrainConfig.model_fields["batch_size"].default  # untouched defaults kept
    with pytest.raises(ValidationError):
        cfg.epochs = 5
    assert cfg.epochs == 2
    # Frozen configs are hashable and compare by value.
    assert hash(cfg) == hash(make(TrainConfig, {"learning_rate": 1e-3, "epochs": 2,
                                                "lora_targets": ("q_proj", "v_proj")}))


def test_empty_values_give_the_defaults():
    assert make(SampleConfig, {}) == SampleConfig()
    assert make(JudgeConfig, {}).judge == JudgeConfig().judge


def test_stages_build_each_config_and_name_the_stage_of_a_bad_key():
    from weirdgen.config import ConfigError, Stages

    stages = Stages(train={"epochs": 2}, sample={"max_tokens": 5})
    assert stages.train.epochs == 2 and stages.sample.max_tokens == 5 and stages.judge is None
    assert list(stages.table()["stage"]) == ["training", "sampling"]
    with pytest.raises(ConfigError, match=r"parameters \(sampling\): unknown SampleConfig parameter 'max_token'"):
        Stages(sample={"max_token": 5})


def test_check_choices_lists_what_exists():
    from weirdgen.config import ConfigError, check_choices

    check_choices("training_sets", ["a"], {"a": 1, "b": 2})
    with pytest.raises(ConfigError, match=r"parameter training_sets: unknown \['c'\]; choose from \['a', 'b'\]"):
        check_choices("training_sets", ["a", "c"], {"a": 1, "b": 2})


def test_bfloat16_training_warns_in_one_line_on_a_cpu_without_bf16_instructions(monkeypatch, capsys):
    import contextlib

    from weirdgen import models, train

    assert isinstance(train._autocast("float32", "cpu"), contextlib.nullcontext)
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    train._autocast("bfloat16", "cpu")
    err = capsys.readouterr().err.strip()
    assert "no bf16 instructions" in err and "train_precision: float32" in err and "\n" not in err
    train._autocast("bfloat16", "cuda")  # a GPU has them
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    train._autocast("bfloat16", "cpu")
    assert capsys.readouterr().err == ""

from dataclasses import dataclass, field

import pytest

from common import config_io
from pipeline.config import CleanConfig, load_clean_config


@dataclass
class Inner:
    count: int = 1
    ratio: float = 0.5
    names: list[str] = field(default_factory=lambda: ["en"])
    path: str | None = None
    enabled: bool = False


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    steps: int = 3


def test_defaults_then_toml_then_overrides(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("steps = 10\n[inner]\ncount = 4\nnames = ['de', 'fr']\n")
    config = config_io.load(Outer, toml, {"inner.ratio": "0.25", "inner.enabled": "true", "inner.path": "x"})
    assert config == Outer(Inner(4, 0.25, ["de", "fr"], "x", True), 10)


def test_comma_list_and_none_override():
    config = config_io.load(Outer, None, {"inner.names": "en,de", "inner.path": "none"})
    assert config.inner.names == ["en", "de"] and config.inner.path is None


@pytest.mark.parametrize("overrides, message", [
    ({"inner.cont": "1"}, "unknown config key 'inner.cont'"),
    ({"inner.count": "many"}, "inner.count must be an integer"),
    ({"inner.enabled": "maybe"}, "inner.enabled must be true or false"),
    ({"steps.x": "1"}, "has no sub-key"),
])
def test_bad_overrides_are_one_clear_line(overrides, message):
    with pytest.raises(config_io.ConfigError, match=message) as error:
        config_io.load(Outer, None, overrides)
    assert "\n" not in str(error.value)


def test_bad_files(tmp_path):
    with pytest.raises(config_io.ConfigError, match="not found"):
        config_io.load(Outer, tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("steps = [\n")
    with pytest.raises(config_io.ConfigError, match="not valid TOML"):
        config_io.load(Outer, broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[inner]\nbogus = 1\n")
    with pytest.raises(config_io.ConfigError, match="unknown config key 'inner.bogus'"):
        config_io.load(Outer, wrong)


def test_clean_config_round_trips_through_dict():
    config = CleanConfig()
    assert config_io.from_dict(CleanConfig, config_io.to_dict(config)) == config


def test_a_directory_or_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    with pytest.raises(config_io.ConfigError, match="is a directory"):
        config_io.load(Outer, tmp_path)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes("name = 'Müller'\n".encode("latin-1"))
    with pytest.raises(config_io.ConfigError, match="not UTF-8"):
        config_io.load(Outer, latin1)


@pytest.mark.parametrize("key, value, message", [
    ("stages", "bogus", "unknown stage 'bogus'"),
    ("stages", "", "unknown stage"),
    ("read.chunk_bytes", "0", "read.chunk_bytes must be at least 1"),
    ("read.download_attempts", "0", "read.download_attempts must be at least 1"),
    ("read.max_record_bytes", "-5", "read.max_record_bytes must be at least 1"),
    ("read.download_timeout_s", "0", "read.download_timeout_s must be positive"),
    ("read.download_backoff_s", "-1", "read.download_backoff_s must not be negative"),
    ("read.max_replacement_ratio", "1.5", r"read.max_replacement_ratio must be in \[0, 1\]"),
    ("output.num_shards", "0", "output.num_shards must be at least 1"),
])
def test_clean_settings_out_of_range_are_refused_where_they_are_read(key, value, message):
    with pytest.raises(config_io.ConfigError, match=message):
        load_clean_config(None, {key: value})

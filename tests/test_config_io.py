from dataclasses import dataclass, field

import pytest

from pipeline import config_io
from pipeline.config import CleanConfig


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

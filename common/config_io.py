"""Typed dataclass configuration: defaults in code, a TOML file on top, command-line overrides last.

Shared by `python -m pipeline` and `python -m train` (it imports nothing but the standard library).
Nested dataclasses map to TOML tables; overrides use dotted keys (`quality.min_words=50`).
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override the user gave is wrong; the message is one line."""


def load(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Build `cls` from its defaults, then the TOML file at `path`, then `overrides`."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                values = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory") from None
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
        except UnicodeDecodeError:  # TOML files are UTF-8 by definition
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    config = from_dict(cls, values)
    for key, value in (overrides or {}).items():
        config = override(config, key, value)
    return config


def from_dict(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a (possibly nested) dict, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'} must be a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key {_join(where, unknown[0])!r}; known keys: {', '.join(sorted(known))}")
    kwargs = {}
    for name, raw in values.items():
        kwargs[name] = _coerce(hints[name], raw, _join(where, name))
    return cls(**kwargs)


def override(config: T, dotted_key: str, value: Any, where: str = "") -> T:
    """Return a copy of `config` with `dotted_key` set; string values are parsed to the field's type."""
    head, _, rest = dotted_key.replace("-", "_").partition(".")
    fields = {f.name: f for f in dataclasses.fields(config)}
    if head not in fields:
        raise ConfigError(f"unknown config key {_join(where, head)!r}; known keys: {', '.join(sorted(fields))}")
    hint = typing.get_type_hints(type(config))[head]
    if rest:
        child = getattr(config, head)
        if not dataclasses.is_dataclass(child):
            raise ConfigError(f"config key {_join(where, head)!r} has no sub-key {rest!r}")
        return dataclasses.replace(config, **{head: override(child, rest, value, _join(where, head))})
    return dataclasses.replace(config, **{head: _coerce(hint, value, _join(where, head))})


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict of a dataclass config, for writing next to outputs (JSON-safe)."""
    return dataclasses.asdict(config)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(hint: Any, raw: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, raw, key)
    if origin in (typing.Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")) and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, raw, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"bad value for {key}: {raw!r}")
    if origin in (list, tuple):
        items = raw.split(",") if isinstance(raw, str) else raw
        if isinstance(raw, str) and raw == "":
            items = []
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {raw!r}")
        item_hint = args[0] if args else str
        coerced = [_coerce(item_hint, item, key) for item in items]
        return tuple(coerced) if origin is tuple else coerced
    if origin is dict:
        if not isinstance(raw, dict):
            raise ConfigError(f"{key} must be a table, got {raw!r}")
        return dict(raw)
    if origin is typing.Literal:
        if raw not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, args))}; got {raw!r}")
        return raw
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, got {raw!r}")
    if hint in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{key} must be a number, got {raw!r}")
        try:
            value = hint(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be {'an integer' if hint is int else 'a number'}, got {raw!r}") from None
        if hint is int and isinstance(raw, float) and raw != value:
            raise ConfigError(f"{key} must be an integer, got {raw!r}")
        return value
    if hint is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{key} must be a string, got {raw!r}")
        return raw
    if hint is Any:
        return raw
    raise ConfigError(f"{key}: unsupported config type {hint!r}")

"""Typed ``--set key=value`` overrides for a reproduction's frozen ``Config`` dataclass.

Every paper module defines ``Config`` (frozen, validating itself in ``__post_init__``) and a
``PRESETS`` dict with ``smoke``, ``cpu`` and ``full``. Overrides are parsed by each field's declared type,
so ``--set epochs=3`` is an int and ``--set datasets=digits,fashion-mnist`` a tuple of str.
"""

from __future__ import annotations

import dataclasses
import typing


class ConfigError(ValueError):
    """A bad override or an invalid configuration; the message says what is allowed."""


def field_types(config_cls: type) -> dict[str, object]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def parse_value(key: str, text: str, kind: object) -> object:
    """``text`` as a value of the annotated type ``kind`` (bool, int, float, str, tuple of those)."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(parse_value(key, part.strip(), item) for part in text.split(",") if part.strip())
    if kind is bool:
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected true or false, got {text!r}")
    if kind in (int, float, str):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{key}: expected {kind.__name__}, got {text!r}") from None
    raise ConfigError(f"{key}: fields of type {kind} cannot be set from the command line")


def apply_overrides(config: object, pairs: list[str] | tuple[str, ...]) -> object:
    """A copy of ``config`` with each ``key=value`` applied; unknown keys name the known ones."""
    types = field_types(type(config))
    changes = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        if key not in types:
            raise ConfigError(f"--set {key}: unknown key; known keys: {', '.join(sorted(types))}")
        changes[key] = parse_value(key, text.strip(), types[key])
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from err


def as_dict(config: object) -> dict:
    return dataclasses.asdict(config)

"""Typed settings: keyword-only dataclasses built from a params.yaml section.

Unknown keys and wrong types fail fast with the parameter's dotted name, so a typo in
params.yaml is an error, not a silently ignored knob.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Self


class ConfigError(ValueError):
    """A bad parameter value; the message starts with the parameter's dotted name."""


def check(ok: bool, name: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {msg}")


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def build(cls: type, section: dict[str, Any] | None, where: str) -> Any:
    """Build any (keyword-only) dataclass from a params section, checked and validated.

    Unknown keys and wrong types raise ConfigError naming `where.key`; a `validate()` method,
    if the class has one, runs last and its ValueError is re-raised prefixed with `where`.
    """
    section = dict(section or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(section) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown parameter (known: {', '.join(sorted(fields))})")
    for name, value in section.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            section[name] = build(tp, value, f"{where}.{name}")
        elif not _type_ok(value, tp):
            raise ConfigError(f"{where}.{name}: expected {tp}, got {value!r}")
        elif tp is float and isinstance(value, int):
            section[name] = float(value)
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            section[name] = tuple(value)
    obj = cls(**section)
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except ConfigError:
            raise
        except ValueError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(where) else f"{where}.{msg}") from e
    return obj


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Base class: `from_dict(section, where)` builds, type-checks and validates."""

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None, where: str) -> Self:
        return build(cls, section, where)

    def validate(self) -> None:  # overridden where values need more than a type
        pass

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

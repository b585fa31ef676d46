"""Typed settings: keyword-only dataclasses built from a params.yaml section.

Every settings class derives from `Settings` and follows one contract:

- `Cls.from_dict(section, where)` is the one way to build it from a params mapping: unknown
  keys and wrong types raise `ConfigError` naming `where.key`, then `validate()` runs;
- `validate()` returns None or raises `ConfigError` naming `section.key`, where `section` is
  the class's home section (`Cls.section`); built under another name (`where`), the error
  names `where.key` instead.

So a typo in params.yaml is an error naming the parameter, not a silently ignored knob.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Self


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


def build(cls: type, section: dict[str, Any] | None, where: str, *, validate: bool = True) -> Any:
    """Build any (keyword-only) dataclass from a params section, checked and validated.

    Unknown keys and wrong types raise ConfigError naming `where.key`; a `validate()` method,
    if the class has one, runs last (unless `validate=False`: names and types only) and its
    ConfigError is re-raised naming `where` in place of the class's home section.
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
            raise ConfigError(f"{where}.{name}: expected {tp.__name__ if isinstance(tp, type) else tp}, got {value!r}")
        elif tp is float and isinstance(value, int):
            section[name] = float(value)
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            section[name] = tuple(value)
    obj = cls(**section)
    if validate and hasattr(obj, "validate"):
        try:
            obj.validate()
        except ConfigError as e:
            raise ConfigError(renamed(str(e), getattr(cls, "section", ""), where)) from e
    return obj


def renamed(msg: str, home: str, where: str) -> str:
    """A validation message naming `home.key` (or `where.key`, or a bare `key`), renamed to
    name `where.key`."""
    for name in (where, home):
        if name and msg.startswith((name + ".", name + ":", name + "[")):
            return where + msg[len(name):]
    return f"{where}.{msg}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Base class of every settings section (see the module docstring for the contract)."""

    section: ClassVar[str] = ""
    """The params.yaml section the class is read from by default, as validate() names it."""

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None, where: str | None = None, *, validate: bool = True) -> Self:
        """Build from a params mapping, naming errors `where.key` (default: the home section)."""
        return build(cls, section, where or cls.section, validate=validate)

    def validate(self) -> None:  # overridden where values need more than a type
        pass

    def require(self, ok: bool, key: str, msg: str) -> None:
        """Raise ConfigError naming `section.key` unless `ok`."""
        check(ok, f"{self.section}.{key}" if self.section else key, msg)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

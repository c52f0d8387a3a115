"""Typed, frozen configs. YAML and `--set key=value` exist only at the edge; unknown keys are errors.

Every number setting declares its allowed range once, on its dataclass field, and is checked here
before any work, the range named in the message (`v2m stages -v` lists them):

    iters_pose: Annotated[int, Range(1, 100_000)] = 200
    conf: Annotated[float, Range(0, 1)] = 0.1
    jitter_cutoff_hz: Annotated[float, Range(0, None, lo_open=True)] = 6.0     # > 0
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from dataclasses import dataclass
from typing import Annotated, Any, Mapping, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """lo <= value <= hi (None: no bound on that side); `lo_open`: lo < value."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def __str__(self) -> str:
        lo = "" if self.lo is None else f"{self.lo:g} {'<' if self.lo_open else '<='} "
        hi = "" if self.hi is None else f" <= {self.hi:g}"
        return f"{lo}x{hi}"

    def check(self, value: float, where: str) -> None:
        below = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        if below or (self.hi is not None and value > self.hi) or value != value:  # value != value: NaN
            raise ConfigError(f"{where}={value!r} is out of range: allowed {str(self).replace('x', where.rpartition('.')[2])}")


def allowed(tp: Any) -> str:
    """What a field accepts, for `v2m stages -v`: its range or choices ('' for free values)."""
    if typing.get_origin(tp) is Annotated:
        return " and ".join(str(m) for m in typing.get_args(tp)[1:] if isinstance(m, Range))
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        parts = [allowed(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(p for p in parts if p) + (" or null" if type(None) in typing.get_args(tp) and any(parts) else "")
    return ""


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(name, default, allowed) of each field of a config dataclass."""
    hints = typing.get_type_hints(cls, include_extras=True)
    default = cls()
    return [(f.name, getattr(default, f.name), allowed(hints[f.name])) for f in dataclasses.fields(cls)]


def check_ranges(obj: Any, where: str = "") -> None:
    """Every Range of a config instance's fields (defaults included); ConfigError naming the first out of range."""
    hints = typing.get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        _coerce(hints[f.name], getattr(obj, f.name), where + f.name)


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build the frozen dataclass `cls` from a mapping, converting scalars to the declared types.

    Unknown keys raise ConfigError naming the key and the valid ones, so a typo never silently
    creates a new setting.
    """
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
            f"valid keys{' under ' + where.rstrip('.') if where else ''}: {', '.join(sorted(names))}"
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {k: _coerce(hints[k], v, where + k) for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid config for {where.rstrip('.') or cls.__name__}: {e}") from e
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain dict (tuples become lists) of a config dataclass, for YAML, JSON and manifests."""
    return dataclasses.asdict(obj)


def replace(obj: T, **changes: Any) -> T:
    """A copy of a frozen config with some fields changed, type-checked like `from_mapping`."""
    merged = {**to_dict(obj), **changes}
    return from_mapping(type(obj), merged)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of stage name -> settings")
    return data


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """Turn ['detect.conf=0.3', ...] into {'detect': {'conf': 0.3}} (values parsed as YAML scalars)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not section or not name:
            raise ConfigError(f"--set {item!r}: expected STAGE.KEY=VALUE, e.g. detect.conf=0.3")
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Two-level merge of config mappings: `over` wins per key."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        value = _coerce(args[0], value, where)
        for rng in (m for m in args[1:] if isinstance(m, Range)):
            rng.check(value, where)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for a in non_none:
            try:
                return _coerce(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is typing.Literal:
        if isinstance(value, bool):
            # YAML 1.1 reads off/on/yes/no as booleans: `--set fit.smoothing=off` means the string
            words = [a for a in args if isinstance(a, str) and yaml.safe_load(a) is value]
            value = words[0] if len(words) == 1 else value
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, where) for a, v in zip(args, value))
        return tuple(value)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_mapping(tp, value, where + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):      # YAML 1.1 reads 1e9 as a string (it wants 1.0e+9): a user means the number
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value

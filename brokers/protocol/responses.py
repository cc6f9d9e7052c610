"""Building kio response messages: the per-version module, fields a version has, no throttle."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib
from types import ModuleType
from typing import Any

from . import codec

NO_THROTTLE = datetime.timedelta(0)
"""throttle_time of every response: quotas do not throttle yet."""


@functools.cache
def response_module(api_key: int, version: int) -> ModuleType:
    """The kio module of a response version, holding its nested entity classes."""
    return importlib.import_module(codec.response_type(api_key, version).__module__)


@functools.cache
def _field_names(cls: type[Any]) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(cls))


def build(cls: type[Any], **values: Any) -> Any:
    """A kio message of `cls` from those of `values` its version has (shared by the handlers).

    Versions of one API differ by added or removed fields; handlers pass every field they know
    and each version keeps its own.
    """
    names = _field_names(cls)
    return cls(**{name: value for name, value in values.items() if name in names})

"""Grains: what one value of an expression stands for, on two axes.

* time: a constant (``scalar``), one value per row of a source (``tick``), one per bar of a grid (``bar``), one
  per event of an event grid (``event``) or one per session (``session``);
* entity: what the value is about: an instrument listed in the project, a member of a universe found in the
  data, or a contract of an option chain.

Shared by the compiler (grain inference, lowering), the manifest and the runtime, so that no stage parses a
grain out of a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any


class Time(StrEnum):
    SCALAR = "scalar"
    TICK = "tick"
    BAR = "bar"
    EVENT = "event"
    SESSION = "session"
    INVALID = "invalid"  # a sub-expression already reported as an error


class EntityKind(StrEnum):
    INSTRUMENT = "instrument"
    UNIVERSE = "universe"
    CONTRACT = "contract"


@dataclass(frozen=True, order=True)
class Entity:
    """One subject of values. ``key`` is the instrument (or universe member, contract); an empty key is "the
    entity the kernel is called for": compiled code is the same for every entity of a kind."""

    kind: EntityKind = EntityKind.INSTRUMENT
    key: str = ""


@dataclass(frozen=True)
class Grain:
    time: Time
    source: str = ""  # the source whose rows a tick grain runs over
    entity: Entity | None = None  # whose rows; None where the grain is about no one entity

    @property
    def is_tick(self) -> bool:
        return self.time is Time.TICK

    @property
    def rows(self) -> tuple[str, str]:
        """Which rows a tick value runs over: (source, entity key). Two tick grains combine only if equal."""
        return (self.source, self.entity.key if self.entity else "")

    def label(self, with_entity: bool = True) -> str:
        """How an error message names the rows: ``trades`` or ``spy.trades``."""
        if self.is_tick and with_entity and self.entity and self.entity.key:
            return f"{self.entity.key}.{self.source}"
        return self.source or self.time.value

    def for_any_entity(self) -> Grain:
        """The same grain inside a kernel, where the entity is the call's, not a named one."""
        if self.entity is None or not self.entity.key:
            return self
        return Grain(self.time, self.source, Entity(self.entity.kind))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"time": self.time.value}
        if self.source:
            data["source"] = self.source
        if self.entity is not None:
            data["entity"] = {"kind": self.entity.kind.value, "key": self.entity.key}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grain:
        entity = data.get("entity")
        return cls(
            Time(data["time"]),
            data.get("source", ""),
            Entity(EntityKind(entity["kind"]), entity["key"]) if entity is not None else None,
        )


@lru_cache(maxsize=65536)
def natural_key(key: str | None) -> tuple[tuple[int, int | str], ...]:
    """The order of entities in columns and kernels: digits compare as numbers (s2 before s10). Cached: a run
    sorts the same few hundred instrument names into thousands of columns."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", key or "") if part)


SCALAR = Grain(Time.SCALAR)
BAR = Grain(Time.BAR)
INVALID = Grain(Time.INVALID)


def tick(source: str, instrument: str = "") -> Grain:
    """One value per row of ``source`` for one instrument ('' inside a kernel)."""
    return Grain(Time.TICK, source, Entity(EntityKind.INSTRUMENT, instrument))

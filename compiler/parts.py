"""A source's kernel in parts: keep the earlier build's kernel file, compile only the slots it lacks.

A source's slots are fused into one kernel (one pass over the ticks computes them all), so a new slot makes numba
compile the whole kernel again: 2-3 s for the shipped trades kernel, most of an edit's compile. When an edit
only adds slots (a new feature, or a formula changed into a new form while the old form is still read), the
earlier build's kernel is kept as it is (its file untouched, so numba's cache of it stays valid) and the new
slots go to a second, small kernel file: the run then makes two passes over the source's ticks, one of them
short. The earlier kernel is reused only if the slots of the new plan render it again byte for byte (constants
are parameters, so it may hold other values of them); a kernel one of whose slots no feature reads any more,
or more new slots than ``MAX_NEW_SLOTS``, is compiled fused again. The values are the same either way: every
slot computes the same thing from the same ticks in the same order in whichever file it is.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from fspec.compiler import ir
from fspec.compiler.codegen import lift_constants, render_kernel
from fspec.compiler.lower import Slot, TickKernel
from fspec.manifest import KernelDef

MAX_NEW_SLOTS = 4  # beyond this many new slots, one fused kernel again (the second pass would cost the runs more)


@dataclass(frozen=True)
class Part:
    kernel: TickKernel  # its slots numbered from 0
    rows: tuple[int, ...]  # which slots of the source's kernel they are
    text: str  # the file's text


def previous_kernels(manifest_path: Path) -> dict[str, KernelDef]:
    """The earlier build's tick kernels by source (none if there is no readable manifest)."""
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        return {k["source"]: KernelDef.from_json(k) for k in data["kernels"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def split(kernel: TickKernel, previous: KernelDef | None, kernel_dir: Path) -> list[Part] | None:
    """The kernel as the earlier build's first part plus a part of the slots it lacks, or None (one fused file)."""
    if previous is None or previous.by:
        return None
    base_path, base_texts = _first_part(previous)
    try:
        on_disk = (kernel_dir / Path(base_path).name).read_text(encoding="utf-8")
    except OSError:
        return None
    rows = _match(base_texts, on_disk, kernel.slots)
    if rows is None:
        return None
    new = [s for s in kernel.slots if s.index not in set(rows)]
    if len(new) > MAX_NEW_SLOTS or (not new and rows == sorted(rows)):
        return None  # too many new slots; or the same kernel, which the fused path renders as it is
    base = part_kernel(kernel.source, [kernel.slots[r] for r in rows])
    text = render_kernel(base)
    if text != on_disk:
        return None
    parts = [Part(base, tuple(rows), text)]
    if new:
        extra = part_kernel(kernel.source, new)
        parts.append(Part(extra, tuple(s.index for s in new), render_kernel(extra, single=True)))
    return parts


def part_kernel(source: str, slots: list[Slot]) -> TickKernel:
    """A kernel of some slots, numbered from 0, with the columns and parameters they read (as lower.py plans)."""
    numbered = tuple(replace(s, index=j) for j, s in enumerate(slots))
    nodes = [n for s in numbered for a in s.args for n in a.walk()]
    columns = tuple(sorted({n.column for n in nodes if isinstance(n, ir.Column)}))
    params = tuple(sorted({n.name for n in nodes if isinstance(n, ir.ParamRef)}))
    digest = hashlib.sha256(json.dumps([s.text for s in numbered] + list(columns) + list(params)).encode())
    return TickKernel(source, f"{source}_{digest.hexdigest()[:12]}", columns, params, numbered)


def _first_part(previous: KernelDef) -> tuple[str, list[str]]:
    if previous.parts:
        first = previous.parts[0]
        return first.path, [previous.slots[r] for r in first.rows]
    return previous.path, list(previous.slots)


def _match(texts: list[str], file_text: str, slots: tuple[Slot, ...]) -> list[int] | None:
    """For each slot of the earlier file, the new slot that computes it: one of the same shape (the formula with
    its constants as parameters, as the file's SLOTS list has it), the same formula where there is a choice;
    None if one is not computed any more."""
    listed = _file_slots(file_text)
    if listed is None or len(listed) != len(texts):
        return None
    shapes: dict[str, list[int]] = {}
    for s in slots:
        shapes.setdefault(_shape(s), []).append(s.index)
    taken: set[int] = set()
    rows: list[int] = []
    for text, shape in zip(texts, listed, strict=True):
        free = [i for i in shapes.get(_CONST.sub("const__", shape), []) if i not in taken]
        if not free:
            return None
        exact = [i for i in free if slots[i].text == text]
        rows.append((exact or free)[0])
        taken.add(rows[-1])
    return rows


_CONST = re.compile(r"const__\d+")


def _file_slots(text: str) -> list[str] | None:
    """The SLOTS list of a kernel file (its slots' formulas, constants as parameters)."""
    for line in text.splitlines():
        if line.startswith("SLOTS = "):
            try:
                value = ast.literal_eval(line.removeprefix("SLOTS = "))
            except (ValueError, SyntaxError):
                return None
            return [str(v) for v in value] if isinstance(value, list) else None
    return None


def _shape(slot: Slot) -> str:
    """The slot's formula with its liftable constants as parameters, unnumbered: equal for slots that differ in
    such constants only."""
    return _CONST.sub("const__", lift_constants(part_kernel("", [slot]))[0].slots[0].text)

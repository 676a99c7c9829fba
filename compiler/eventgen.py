"""Event kernels -> source files. The template receives a typed :class:`EventKernelModel`, nothing else.

An event kernel walks one entity's events in time order with two pointers into its rows, so that each window
is one run of rows found without a search: the slots sharing a window (and ago) share the walk and one pass
over the window's rows, in which each reducer runs its own per-row code (its registry entry's ``reduce``
lowering, the same as in a bar kernel); asof and age keep, as the walk passes the rows, the last one whose
expression is not NaN, and write at each event what their registry entry's ``event`` lowering says of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fspec import __version__
from fspec.compiler.codegen import RESERVED, Emitter, KernelModel, Step, kernel_template, reduce_slot
from fspec.compiler.events import EventKernel, EventSlot, duration_text
from fspec.compiler.lower import Slot
from fspec.operators import EVENT, REGISTRY

_EVENT_NAMES = frozenset(["n_rows", "end", "event_t", "cut"])


@dataclass
class WindowWalk:
    """The slots over one window (and ago): their locals, per-row steps and writes."""

    window_ns: int
    ago_ns: int
    bucket_ns: int = 0  # a bucket (targets): the rows of the event's own bucket, those after it included
    texts: list[str] = field(default_factory=list)
    locals: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    flush: list[Step] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.bucket_ns:
            return f"the event's {duration_text(self.bucket_ns)} bucket (after the event too: a target's)"
        return duration_text(self.window_ns) + (f", {duration_text(self.ago_ns)} ago" if self.ago_ns else "")


@dataclass(frozen=True)
class BackScan:
    """An asof / age slot: ``steps`` compute ``value`` at row j as the walk passes it; the last row whose value is
    not NaN is kept (``seen``, ``kept``), so that an event's read is the kept row, found without a scan back."""

    slot: int
    text: str
    steps: tuple[Step, ...]
    value: str
    write: str  # the operator's write, with j the kept row and the kept value

    @property
    def seen(self) -> str:
        return f"seen_{self.slot}"

    @property
    def kept(self) -> str:
        return f"kept_{self.slot}"


@dataclass
class ScanWalk:
    """The asof / age slots that read the last row before one end (the cut, or ``ago`` before it)."""

    ago_ns: int
    texts: list[str] = field(default_factory=list)
    scans: list[BackScan] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"the cut minus {duration_text(self.ago_ns)}" if self.ago_ns else "the cut"


@dataclass
class EventKernelModel:
    init: list[str] = field(default_factory=list)
    windows: list[WindowWalk] = field(default_factory=list)
    scans: list[ScanWalk] = field(default_factory=list)


def _window_slot(slot: EventSlot, walk: WindowWalk, kernel: EventKernel, taken: set[str]) -> set[str]:
    model = KernelModel()
    emitter = Emitter(kernel, model, model.steps, prefix=f"w{slot.index}_", index="i", per_tick=False)  # type: ignore[arg-type]
    args = [emitter.value(a) for a in slot.args]
    names = reduce_slot(Slot(slot.index, slot.op, slot.args), args, model, taken)
    walk.locals += model.bar_locals
    walk.steps += model.steps
    walk.flush += model.flush
    walk.texts.append(slot.text)
    return names


def _scan_slot(slot: EventSlot, kernel: EventKernel) -> BackScan:
    model = KernelModel()
    steps: list[Step] = []
    emitter = Emitter(kernel, model, steps, prefix=f"e{slot.index}_", index="j", per_tick=False)  # type: ignore[arg-type]
    value = emitter.value(slot.args[0])
    write = REGISTRY[slot.op].event(slot.index, f"kept_{slot.index}")  # type: ignore[misc]
    return BackScan(slot.index, slot.text, tuple(steps), value, write)


def event_kernel_model(kernel: EventKernel) -> EventKernelModel:
    model = EventKernelModel()
    walks: dict[tuple[int, int, int], WindowWalk] = {}
    scans: dict[int, ScanWalk] = {}
    taken = set(RESERVED | _EVENT_NAMES)
    for slot in kernel.slots:
        op = REGISTRY[slot.op]
        model.init.append(f"out[{slot.index}, :] = {'nan' if op.kind == EVENT else op.empty}")
        if op.kind == EVENT:
            walk = scans.setdefault(slot.ago_ns, ScanWalk(slot.ago_ns))
            walk.scans.append(_scan_slot(slot, kernel))
            walk.texts.append(slot.text)
        else:
            key = (slot.window_ns or slot.bucket_ns, slot.ago_ns, slot.bucket_ns)
            window = walks.setdefault(key, WindowWalk(*key))
            taken |= _window_slot(slot, window, kernel, taken)
    model.windows = list(walks.values())
    model.scans = list(scans.values())
    return model


def render_event_kernel(kernel: EventKernel) -> str:
    return kernel_template("event_kernel.py.j2").render(
        k=kernel,
        model=event_kernel_model(kernel),
        version=__version__,
        slot_texts=repr([s.text for s in kernel.slots]),
    )

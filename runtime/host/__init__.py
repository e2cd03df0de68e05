"""Hosting: many entity actors inside one async process.

A Ray actor costs ~0.4 s and ~95 MB on this machine, so an entity is not a Ray actor: it is a
small cell (state, version, mailbox) in an EntityTable, and an ActorHost (one Ray actor) hosts
a table of up to hundreds of thousands of them.

Per entity: one command at a time, in arrival order (a FIFO hand-off mailbox). Activation loads
the newest snapshot and replays the tail; concurrent activations are bounded and deduplicated.
Idle cells are passivated, and above the resident cap the least recently used go first. The log
is the only state of record: a cell can be dropped at any moment and comes back from the store.

The table is composed of one part per job, each in its own module: cells.py (what is kept per
entity), mailbox.py, activation.py, commands.py, signals.py, appends.py and reads.py.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from runtime.host.activation import Activation
from runtime.host.appends import Appends
from runtime.host.cells import SUBSCRIBER_BUFFER, Cell, ErrorReply, replay
from runtime.host.commands import Commands
from runtime.host.mailbox import Mailbox
from runtime.host.reads import Reads
from runtime.host.signals import Signals
from runtime.metrics import Histogram
from runtime.slots import Slots
from runtime.stores.base import EventStore

__all__ = ["EntityTable", "ErrorReply", "SUBSCRIBER_BUFFER", "replay"]


class EntityTable(Mailbox, Activation, Commands, Signals, Appends, Reads):
    """Many entities in one async process: the parts above over one map of cells."""

    def __init__(
        self,
        store: EventStore,
        *,
        idle_seconds: float = 300.0,
        max_resident: int = 200_000,
        max_concurrent_activations: int = 64,
        services: Any = None,
    ) -> None:
        self.store = store
        self.idle_seconds = idle_seconds
        self.max_resident = max_resident
        self.services = services
        self._cells: collections.OrderedDict[str, Cell] = collections.OrderedDict()
        self._activation_slots = Slots(max_concurrent_activations)
        self._background: set[asyncio.Task] = set()
        self.counters = collections.Counter()
        #: per kind: commands handled and events appended (counters), and how long a command
        #: took (mailbox wait included) and an append took (histograms); exported by /metrics.
        self.kind_counters: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)
        self.command_seconds: dict[str, Histogram] = collections.defaultdict(Histogram)
        self.append_seconds: dict[str, Histogram] = collections.defaultdict(Histogram)

    def metrics(self) -> dict[str, Any]:
        """Per-kind counters and histograms as plain data, plus resident entities by kind."""
        resident: collections.Counter = collections.Counter(
            c.kind.name for c in self._cells.values())
        return {"kinds": {k: dict(v) for k, v in self.kind_counters.items()},
                "command_seconds": {k: h.to_dict() for k, h in self.command_seconds.items()},
                "append_seconds": {k: h.to_dict() for k, h in self.append_seconds.items()},
                "resident": dict(resident), "subscribers": self.subscribers}

    @property
    def subscribers(self) -> int:
        return sum(len(c.subscribers) for c in self._cells.values() if c.subscribers)

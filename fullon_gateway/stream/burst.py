"""The frames written at once while the hub dispatches one read, one send per socket.

When the gateway falls behind, one read of the pub/sub connection brings several
messages, and a socket that wants several of them would get one ``send`` per frame:
the kernel's per-send cost (~8-17 µs on loopback here, scripts/bench/sendcost.py) is
most of a delivery. While a burst is open, a socket's direct write
(connection.Connection.write_now) is held instead; ``flush`` writes what each socket
holds with one send. The hub begins a burst before it dispatches a read and flushes it
before it yields to the event loop (so nothing else can write to a socket between a
held frame and its flush: the order on the wire is the order of the writes) and once
the read was dispatched. The first fanned-out message of a read is written at once
and only later ones are held, so a read that brings one message (a broadcast) waits
for nothing: a socket then gets two sends for a read of k messages instead of k.

Invariant: a socket holds frames only while a burst is open, and it is then in
``held`` exactly once.
"""

from __future__ import annotations

from typing import Protocol


class Holder(Protocol):
    def flush_held(self) -> None: ...


class Burst:
    __slots__ = ("held", "open", "woke")

    def __init__(self) -> None:
        self.open = False
        self.held: list[Holder] = []  # the sockets holding frames, in first-held order
        # A socket's writer task was woken (a frame was queued, not written at once): the
        # hub lets the writers run before its next message, as it always did.
        self.woke = False

    def begin(self) -> None:
        """Start a stretch of dispatching: direct writes go out at once until the hub
        sets ``open`` (from its second fanned-out message on), then are held."""
        self.open = False
        self.woke = False

    def flush(self) -> None:
        """Write what every socket holds and close the burst."""
        self.open = False
        held = self.held
        if held:
            self.held = []
            for conn in held:
                conn.flush_held()

"""Event stream (SPEC.md §10): cursors, the expected events of a block, an SSE parser and a
follower that resumes after a disconnect or a `lagged` event without losing or repeating events.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import total_ordering
from typing import Iterator

MAX_CONTRACT_EVENTS = 15
MAX_EVENT_BYTES = 4 << 20  # refuse a single SSE event larger than this
_CURSOR = re.compile(r"^(0|[1-9][0-9]{0,19})\.(0|[1-9][0-9]{0,19})$")


@total_ordering
@dataclass(frozen=True)
class Cursor:
    """`H.N`, compared as the integer pair (H, N) — not as a string or decimal."""
    height: int
    n: int

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        m = _CURSOR.match(text or "")
        if not m:
            raise ValueError(f"not an event cursor: {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    def __lt__(self, other: "Cursor") -> bool:
        return (self.height, self.n) < (other.height, other.n)

    def __str__(self) -> str:
        return f"{self.height}.{self.n}"


def tx_cursor(i: int) -> int:
    return 16 * i + 1


def expected_events(height: int, receipts: list) -> list:
    """(kind, cursor, tx_hash) of the events one block produces, in stream order."""
    out = [("block", f"{height}.0", None)]
    for i, r in enumerate(receipts):
        base = 16 * i
        out.append(("tx", f"{height}.{base + 1}", r["tx_hash"]))
        for j, ev in enumerate(r["events"][:MAX_CONTRACT_EVENTS], start=1):
            out.append((ev["kind"], f"{height}.{base + 1 + j}", r["tx_hash"]))
        if r.get("decision") is not None:
            out.append(("policy_decision", f"{height}.{base + 16}", r["tx_hash"]))
    return out


@dataclass
class Event:
    kind: str
    cursor: Cursor | None
    data: object  # parsed JSON (or the raw text if it is not JSON)


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events (WHATWG) from text lines without their line endings."""
    kind, ident, data, size = "message", None, [], 0
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                cur = None
                if ident:
                    try:
                        cur = Cursor.parse(ident)
                    except ValueError:
                        cur = None
                yield Event(kind, cur, payload)
            kind, ident, data, size = "message", None, [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        size += len(value)
        if size > MAX_EVENT_BYTES:
            raise ValueError("server-sent event too large")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            ident = value


class Follower:
    """Follows `/v1/events` from a height, resuming on disconnects and `lagged` events.

    Each event is yielded once, in cursor order: after a reconnect from height H (the last
    cursor's height, or the `resume_from_height` of a `lagged` event) the events whose cursor is
    not greater than the last one seen are dropped (SPEC.md §10)."""

    def __init__(self, client, from_height: int = 1, kinds: str | None = None,
                 max_reconnects: int = 20, backoff_s: float = 0.5, **filters):
        self.client = client
        self.next_height = from_height
        self.last: Cursor | None = None
        self.kinds = kinds
        self.filters = filters
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.reconnects = 0

    def _resume_height(self) -> int:
        return self.last.height if self.last is not None else self.next_height

    def __iter__(self) -> Iterator[Event]:
        while True:
            lagged_height = None
            before = self.last
            try:
                for ev in self.client.event_stream(self._resume_height(), kinds=self.kinds, **self.filters):
                    if ev.kind == "lagged":
                        lagged_height = ev.data.get("resume_from_height") if isinstance(ev.data, dict) else None
                        break
                    if ev.cursor is None:
                        continue
                    if self.last is not None and not ev.cursor > self.last:
                        continue  # already delivered before the reconnect
                    self.last = ev.cursor
                    yield ev
            except (OSError, ConnectionError, ValueError) as e:  # requests' errors subclass these
                err = e
            else:
                err = None
            if isinstance(lagged_height, int) and self.last is None:
                # nothing delivered yet: start where the server says; otherwise resuming from
                # the last cursor's height replays everything after it (and drops what was seen)
                self.next_height = max(self.next_height, lagged_height)
            # count only reconnects that made no progress: a long-lived stream may be closed
            # by the server many times, each time after delivering something
            self.reconnects = 0 if self.last != before else self.reconnects + 1
            if self.reconnects > self.max_reconnects:
                raise ConnectionError(f"event stream: gave up after {self.max_reconnects} reconnects"
                                      + (f" ({err})" if err else ""))
            time.sleep(self.backoff_s)

"""SSE parsing and the resuming follower against a scripted stream (no node needed)."""

import json

from dpx_client import events, rpc


class FakeResp:
    def __init__(self, chunks):
        self.chunks = chunks

    def iter_content(self, chunk_size=None):
        yield from self.chunks


def test_lines_split_only_on_cr_lf():
    chunks = [b"data: {\"a\": \"x\xe2\x80\xa8y\"}\r", b"\nid: 1.0\n", b"\n: comment\r\r\n"]
    assert list(rpc._lines(FakeResp(chunks))) == ['data: {"a": "x\u2028y"}', "id: 1.0", "", ": comment", ""]


def test_parse_sse():
    lines = ["event: block", "id: 3.0", 'data: {"id": "ab"}', "", ": keepalive", "",
             "event: tx", "id: 3.1", "data: {\"x\":", "data: 1}", ""]
    evs = list(events.parse_sse(iter(lines)))
    assert [(e.kind, str(e.cursor), e.data) for e in evs] == [("block", "3.0", {"id": "ab"}),
                                                               ("tx", "3.1", {"x": 1})]


def _block(h, ntx):
    out = [events.Event("block", events.Cursor(h, 0), {})]
    for i in range(ntx):
        out.append(events.Event("tx", events.Cursor(h, 16 * i + 1), {}))
        out.append(events.Event("grant.issued", events.Cursor(h, 16 * i + 2), {}))
    return out


class ScriptedClient:
    """Serves blocks 1..5; the first connection drops mid-block 3, the second ends with lagged."""

    def __init__(self):
        self.all = [e for h in range(1, 6) for e in _block(h, 2)]
        self.calls = []

    def event_stream(self, from_height, kinds=None, **f):
        self.calls.append(from_height)
        evs = [e for e in self.all if e.cursor.height >= from_height]
        if len(self.calls) == 1:
            yield from evs[:13]  # into block 3
            raise ConnectionError("dropped")
        if len(self.calls) == 2:
            yield from evs[:4]
            yield events.Event("lagged", None, {"resume_from_height": from_height})
            return
        yield from evs


def test_follower_resumes_without_loss_or_repeat():
    c = ScriptedClient()
    f = events.Follower(c, from_height=1, backoff_s=0)
    got = []
    for ev in f:
        got.append(ev)
        if len(got) == len(c.all):
            break
    assert [e.cursor for e in got] == [e.cursor for e in c.all]
    assert c.calls == [1, 3, 3]  # resumed from the last cursor's height both times


def test_follower_gives_up():
    class Dead:
        def event_stream(self, *a, **k):
            raise ConnectionError("refused")
            yield  # pragma: no cover

    f = events.Follower(Dead(), max_reconnects=3, backoff_s=0)
    try:
        list(f)
    except ConnectionError as e:
        assert "gave up" in str(e)
    else:
        raise AssertionError("expected to give up")
    assert json.dumps(f.reconnects) == "4"

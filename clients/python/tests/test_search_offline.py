"""The search and history reads (catalogue, decisions, aggregates, grant history) against a
scripted session (no node needed): query strings and the following of `next` cursors."""

import json

import pytest

from dpx_client.rpc import Client, PageLimitExceeded, RpcError


class FakeResp:
    def __init__(self, status, doc):
        self.status_code = status
        self.headers = {}
        self.text = json.dumps(doc)
        self.content = self.text.encode()

    def json(self):
        return json.loads(self.text)


class FakeSession:
    """Answers each request with the next scripted (status, doc) and records (method, url, params)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []
        self.auth = None

    def request(self, method, url, timeout=None, params=None, **kw):
        self.calls.append((method, url, dict(params or {})))
        status, doc = self.answers.pop(0)
        return FakeResp(status, doc)


def client(answers):
    s = FakeSession(answers)
    return Client("http://node.test/", session=s), s


PID = bytes(range(32))
KEY = bytes([0xAB]) * 32


def test_catalogue_query_omits_none_and_converts():
    c, s = client([(200, {"items": [], "next": None, "scanned": None})])
    page = c.catalogue(category="data_service", grade_max=3, provider=KEY, price_max=0,
                       q="cv check", listed=False, after=PID.hex(), limit=20)
    assert page["next"] is None
    method, url, params = s.calls[0]
    assert (method, url) == ("GET", "http://node.test/v1/catalogue")
    assert params == {"category": "data_service", "grade_max": "3", "provider": KEY.hex(),
                      "price_max": "0", "q": "cv check", "listed": "false", "after": PID.hex(),
                      "limit": "20"}


def test_catalogue_no_filters_sends_no_params():
    c, s = client([(200, {"items": [], "next": None, "scanned": None})])
    c.catalogue()
    assert s.calls[0][2] == {}
    c, s = client([(200, {"items": [], "next": None, "scanned": 0})])
    c.catalogue(listed="any", grade=4, domain="employment")
    assert s.calls[0][2] == {"listed": "any", "grade": "4", "domain": "employment"}


def test_iter_catalogue_follows_short_and_empty_pages():
    c, s = client([
        (200, {"items": [{"id": "a"}], "next": "aa" * 32, "scanned": None}),
        (200, {"items": [], "next": "bb" * 32, "scanned": None}),  # empty, yet not the end
        (200, {"items": [{"id": "b"}, {"id": "c"}], "next": None, "scanned": None}),
    ])
    got = [p["id"] for p in c.iter_catalogue(category="report", limit=2)]
    assert got == ["a", "b", "c"]
    assert [p.get("after") for _, _, p in s.calls] == [None, "aa" * 32, "bb" * 32]
    assert all(p["category"] == "report" and p["limit"] == "2" for _, _, p in s.calls)
    assert not s.answers


def test_iter_catalogue_starts_after_a_given_cursor():
    c, s = client([(200, {"items": [], "next": None, "scanned": None})])
    assert list(c.iter_catalogue(after=PID)) == []
    assert s.calls[0][2] == {"after": PID.hex()}


def test_iter_bounds_pages_and_refuses_a_stuck_cursor():
    c, s = client([(200, {"items": [], "next": f"{i:064x}", "scanned": None}) for i in range(1, 10)])
    with pytest.raises(PageLimitExceeded):
        list(c.iter_catalogue(max_pages=3))
    assert len(s.calls) == 3
    c, s = client([(200, {"items": [{"x": 1}], "next": "5.1", "scanned": {"blocks": 1, "receipts": 1}})] * 3)
    with pytest.raises(PageLimitExceeded, match="stopped moving"):
        list(c.iter_decisions(before="5.1"))
    assert len(s.calls) == 1


def test_decisions_query_and_iteration():
    sc = {"blocks": 5000, "receipts": 3}
    c, s = client([
        (200, {"items": [{"height": 9, "index": 0}], "next": "9.0", "scanned": sc}),
        (200, {"items": [], "next": "4.2", "scanned": sc}),
        (200, {"items": [{"height": 3, "index": 1}], "next": None, "scanned": sc}),
    ])
    got = list(c.iter_decisions(principal=KEY, product=PID, action="use_grant", outcome="denied",
                                from_height=1, to_height=10))
    assert [(d["height"], d["index"]) for d in got] == [(9, 0), (3, 1)]
    base = {"principal": KEY.hex(), "product": PID.hex(), "action": "use_grant",
            "outcome": "denied", "from_height": "1", "to_height": "10"}
    assert [p for _, _, p in s.calls] == [base, dict(base, before="9.0"), dict(base, before="4.2")]
    assert all(url == "http://node.test/v1/decisions" for _, url, _ in s.calls)


def test_decisions_single_page_params():
    c, s = client([(200, {"items": [], "next": None, "scanned": {"blocks": 0, "receipts": 0}})])
    c.decisions(resource='Product::"ab"', before="7.3", limit=200)
    assert s.calls[0][2] == {"resource": 'Product::"ab"', "before": "7.3", "limit": "200"}


def test_aggregates_params_and_forbidden():
    c, s = client([(200, {"indexed_height": 5, "counted_from_height": 1, "from_height": 1,
                          "to_height": 5, "counts": {}})])
    assert c.aggregates(from_time_ms=1000, to_time_ms=61000, interval_ms=10000)["indexed_height"] == 5
    assert s.calls[0][1:] == ("http://node.test/v1/aggregates",
                              {"from_time_ms": "1000", "to_time_ms": "61000", "interval_ms": "10000"})
    c, s = client([(403, {"error": {"code": "forbidden", "message": "supervisors only"}})])
    with pytest.raises(RpcError) as err:
        c.aggregates()
    assert err.value.status == 403 and err.value.code == "forbidden"
    assert s.calls[0][2] == {}


def test_grant_history_path_bytes_or_hex():
    doc = {"grant": PID.hex(), "state": "consumed", "subject": KEY.hex(), "steps": []}
    c, s = client([(200, doc), (200, doc), (404, {"error": {"code": "not_found", "message": "no"}})])
    assert c.grant_history(PID) == doc
    assert c.grant_history(PID.hex()) == doc
    with pytest.raises(RpcError) as err:
        c.grant_history(bytes(32))
    assert err.value.status == 404 and err.value.code == "not_found"
    assert [u for _, u, _ in s.calls] == [f"http://node.test/v1/grants/{PID.hex()}/history"] * 2 + \
        [f"http://node.test/v1/grants/{'00' * 32}/history"]

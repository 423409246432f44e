"""The node's HTTP API (served OpenAPI document at `/v1/openapi.json`): submit transactions,
read blocks and state (with proofs), follow events."""

from __future__ import annotations

import json
import time
from typing import Iterator

import requests

from . import bundle as bundle_mod
from .events import Event, parse_sse
from .tx import SignedTx

MAX_RESPONSE_BYTES = 16 << 20
MAX_RETRIES = 8
# iter_catalogue / iter_decisions: pages followed at most (a page may be short or empty while
# `next` is not null, so the bound is on pages, not items)
MAX_PAGES = 10_000


class RpcError(Exception):
    """A JSON error answer {error: {code, message}} (or a non-JSON one)."""

    def __init__(self, status: int, code: str, message: str, body=None):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class PageLimitExceeded(RpcError):
    """A paginated search did not end (``next`` still not null) within ``max_pages`` pages, or
    its cursor stopped moving."""

    def __init__(self, message: str):
        super().__init__(200, "too_many_pages", message)


def _hex(v):
    """bytes → lowercase hex; anything else as given (str)."""
    return v.hex() if isinstance(v, (bytes, bytearray, memoryview)) else v


def _query(**kw) -> dict:
    """Query parameters: None omitted, bytes as hex, booleans as true/false, numbers in decimal."""
    out = {}
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (bytes, bytearray, memoryview)):
            out[k] = bytes(v).hex()
        else:
            out[k] = str(v)
    return out


def _error_from(resp) -> RpcError:
    try:
        doc = resp.json()
    except ValueError:
        return RpcError(resp.status_code, "non_json", resp.text[:500])
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        return RpcError(resp.status_code, str(err.get("code")), str(err.get("message")), doc)
    return RpcError(resp.status_code, "unknown", json.dumps(doc)[:500], doc)


class Client:
    def __init__(self, base_url: str, timeout_s: float = 30.0, auth=None, session=None):
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        if auth is not None:
            self.session.auth = auth
        self._chain_id = None

    # ------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, ok=(200,), **kw):
        for attempt in range(MAX_RETRIES):
            resp = self.session.request(method, self.base + path, timeout=self.timeout_s, **kw)
            if resp.status_code in (429, 503) and attempt + 1 < MAX_RETRIES:
                try:
                    delay = min(float(resp.headers.get("Retry-After", "1")), 10.0)
                except ValueError:
                    delay = 1.0
                time.sleep(max(delay, 0.1))
                continue
            break
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise RpcError(resp.status_code, "too_large", "response too large")
        if resp.status_code not in ok:
            raise _error_from(resp)
        return resp

    def _json(self, method: str, path: str, ok=(200,), **kw):
        resp = self._request(method, path, ok=ok, **kw)
        try:
            return resp.json()
        except ValueError:
            raise RpcError(resp.status_code, "non_json", resp.text[:500]) from None

    # ------------------------------------------------------------ reads
    def status(self) -> dict:
        return self._json("GET", "/v1/status")

    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.status()["chain_id"]
        return self._chain_id

    def health(self) -> dict:
        return self._json("GET", "/health")

    def openapi(self) -> dict:
        return self._json("GET", "/v1/openapi.json")

    def block(self, height="latest") -> dict:
        return self._json("GET", f"/v1/blocks/{height}")

    def tx(self, tx_hash) -> dict:
        h = tx_hash.hex() if isinstance(tx_hash, (bytes, bytearray)) else tx_hash
        return self._json("GET", f"/v1/txs/{h}")

    def state(self, kind: str, ident, prove: bool = False, height: int | None = None) -> dict:
        ident = ident.hex() if isinstance(ident, (bytes, bytearray)) else str(ident)
        params = {}
        if prove:
            params["prove"] = "true"
        if height is not None:
            params["height"] = str(height)
        return self._json("GET", f"/v1/state/{kind}/{ident}", params=params)

    def list_state(self, kind: str, after: str | None = None, limit: int | None = None) -> dict:
        params = {}
        if after:
            params["after"] = after
        if limit:
            params["limit"] = str(limit)
        return self._json("GET", f"/v1/state/{kind}", params=params)

    def next_nonce(self, key: bytes) -> int:
        """The key's next nonce (state `nonce/‖key`; absent = 0)."""
        try:
            doc = self.state("accounts", key)
        except RpcError as e:
            if e.status == 404:
                return 0
            raise
        return _find_nonce(doc)

    def prove(self, kind: str, ident, genesis: dict, height: int | None = None) -> bundle_mod.Verified:
        """Fetch a value with its proof bundle and verify it end to end against ``genesis``."""
        doc = self.state(kind, ident, prove=True, height=height)
        return bundle_mod.verify_bundle(doc, genesis)

    def tx_proof(self, tx_hash) -> dict:
        """The transaction's proof bundle (SPEC.md §11.2), unverified."""
        h = tx_hash.hex() if isinstance(tx_hash, (bytes, bytearray)) else tx_hash
        return self._json("GET", f"/v1/txs/{h}/proof")

    def prove_tx(self, tx_hash, genesis: dict) -> bundle_mod.TxVerified:
        """Fetch a transaction's proof bundle and verify it against ``genesis``."""
        return bundle_mod.verify_tx_bundle(self.tx_proof(tx_hash), genesis)

    # ------------------------------------------------------------ searches and history
    def catalogue(self, category=None, grade=None, grade_max=None, domain=None, provider=None,
                  price_max=None, q=None, listed=None, after=None, limit=None) -> dict:
        """One page of ``GET /v1/catalogue`` (``CataloguePage``: items, next, scanned).

        ``listed`` is ``True`` / ``False`` / ``"any"`` (node default: listed only); ``provider``
        and ``after`` (a product id) are bytes or hex. Parameters left ``None`` are not sent."""
        return self._json("GET", "/v1/catalogue", params=_query(
            category=category, grade=grade, grade_max=grade_max, domain=domain,
            provider=provider, price_max=price_max, q=q, listed=listed, after=after, limit=limit))

    def iter_catalogue(self, max_pages: int = MAX_PAGES, **filters) -> Iterator[dict]:
        """Every matching product, following ``next`` (as ``after``) until it is null."""
        yield from self._follow(self.catalogue, "after", max_pages, filters)

    def decisions(self, principal=None, product=None, resource=None, action=None, outcome=None,
                  from_height=None, to_height=None, before=None, limit=None) -> dict:
        """One page of ``GET /v1/decisions``, newest first (``DecisionPage``: items, next,
        scanned). ``outcome`` is ``"allowed"`` or ``"denied"``; ``before`` is the previous page's
        ``next`` (``<height>.<index>``); ``principal`` and ``product`` are bytes or hex."""
        return self._json("GET", "/v1/decisions", params=_query(
            principal=principal, product=product, resource=resource, action=action,
            outcome=outcome, from_height=from_height, to_height=to_height, before=before,
            limit=limit))

    def iter_decisions(self, max_pages: int = MAX_PAGES, **filters) -> Iterator[dict]:
        """Every matching decision, newest first, following ``next`` (as ``before``)."""
        yield from self._follow(self.decisions, "before", max_pages, filters)

    def aggregates(self, from_height=None, to_height=None, from_time_ms=None, to_time_ms=None,
                   interval_ms=None) -> dict:
        """``GET /v1/aggregates`` (``Aggregates``): counts over a height or time range, or time
        buckets with ``interval_ms``. Supervisors only: anyone else gets RpcError 403
        ``forbidden``. Heights above ``indexed_height`` are not counted yet."""
        return self._json("GET", "/v1/aggregates", params=_query(
            from_height=from_height, to_height=to_height, from_time_ms=from_time_ms,
            to_time_ms=to_time_ms, interval_ms=interval_ms))

    def grant_history(self, grant_id) -> dict:
        """``GET /v1/grants/{id}/history`` (``GrantHistory``): the grant's steps in order. For its
        subject, its consumer and supervisors; anyone else gets RpcError 403 ``forbidden``."""
        return self._json("GET", f"/v1/grants/{_hex(grant_id)}/history")

    @staticmethod
    def _follow(page_fn, cursor_param: str, max_pages: int, filters: dict) -> Iterator[dict]:
        filters = dict(filters)
        cursor = filters.pop(cursor_param, None)
        seen = set()
        for _ in range(max_pages):
            page = page_fn(**filters, **{cursor_param: cursor})
            yield from page.get("items") or []
            nxt = page.get("next")
            if nxt is None:
                return
            if nxt == cursor or nxt in seen:
                raise PageLimitExceeded(f"the cursor stopped moving at {nxt!r}")
            seen.add(nxt)
            cursor = nxt
        raise PageLimitExceeded(f"still a next cursor after {max_pages} pages")

    # ------------------------------------------------------------ writes
    def submit(self, tx, wait: str = "check", timeout_ms: int | None = None,
               protobuf: bool = False) -> dict:
        raw = tx.raw if isinstance(tx, SignedTx) else bytes(tx)
        params = {"wait": wait}
        if timeout_ms is not None:
            params["timeout_ms"] = str(timeout_ms)
        if protobuf:
            return self._json("POST", "/v1/txs", ok=(200, 202), params=params, data=raw,
                              headers={"Content-Type": "application/x-protobuf"})
        return self._json("POST", "/v1/txs", ok=(200, 202), params=params, json={"tx": raw.hex()})

    def submit_batch(self, txs, wait: str = "check") -> dict:
        raws = [t.raw if isinstance(t, SignedTx) else bytes(t) for t in txs]
        return self._json("POST", "/v1/txs/batch", ok=(200, 202), params={"wait": wait},
                          json={"txs": [r.hex() for r in raws]})

    # ------------------------------------------------------------ events
    def event_stream(self, from_height: int | None = None, kinds: str | None = None,
                     **filters) -> Iterator[Event]:
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in filters.items()
                  if v is not None}
        if from_height is not None:
            params["from_height"] = str(from_height)
        if kinds:
            params["kinds"] = kinds
        resp = self.session.get(self.base + "/v1/events", params=params, stream=True,
                                timeout=(self.timeout_s, 60.0), headers={"Accept": "text/event-stream"})
        if resp.status_code != 200:
            err = _error_from(resp)
            resp.close()
            raise err
        try:
            yield from parse_sse(_lines(resp))
        finally:
            resp.close()


def _lines(resp, max_line: int = 4 << 20) -> Iterator[str]:
    """SSE lines: split on LF (CR LF and lone CR too), never on the other Unicode line breaks
    that str.splitlines() would cut JSON text at."""
    buf = b""
    for chunk in resp.iter_content(chunk_size=None):
        buf += chunk
        while True:
            i = buf.find(b"\n")
            j = buf.find(b"\r")
            cut = min(x for x in (i, j) if x >= 0) if (i >= 0 or j >= 0) else -1
            if cut < 0:
                break
            line, sep = buf[:cut], buf[cut:cut + 1]
            rest = buf[cut + 1:]
            if sep == b"\r":
                if not rest:
                    break  # wait: a LF may follow in the next chunk
                if rest[:1] == b"\n":
                    rest = rest[1:]
            buf = rest
            yield line.decode("utf-8", errors="replace")
        if len(buf) > max_line:
            raise ValueError("event stream line too long")


def _find_nonce(doc) -> int:
    """Accepts the account read's JSON: the next nonce is under ``value``."""
    v = doc.get("value", doc) if isinstance(doc, dict) else doc
    if isinstance(v, int):
        return v
    if isinstance(v, dict):
        for k in ("next_nonce", "nonce"):
            if isinstance(v.get(k), int):
                return v[k]
    raise RpcError(200, "unexpected", f"no nonce in account answer {json.dumps(doc)[:200]}")

"""Live test against a 4-validator devnet started here (loopback only).

Needs a dpx binary: DPX_BIN, else ${CARGO_TARGET_DIR:-target}/debug/dpx from the repository root.
Skipped when there is none (scripts/client-test.sh says so); CI passes the binary.
Transactions are built and signed in Python; events are followed with resume; proof bundles are
verified in Python and compared with `dpx audit verify` on valid and tampered bundles.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from dpx_client import auth, bundle, events, grants, hashing, tx
from dpx_client.keys import Keypair
from dpx_client.rpc import Client, RpcError

ROOT = pathlib.Path(__file__).resolve().parents[3]
BASE_PORT = int(os.environ.get("DPX_CLIENT_BASE_PORT", "27100"))
CHAIN = "dpx-pyclient"


def _dpx_bin():
    b = os.environ.get("DPX_BIN")
    if not b:
        b = str(pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "dpx")
    return b if os.path.isfile(b) and os.access(b, os.X_OK) else None


DPX = _dpx_bin()
pytestmark = [pytest.mark.live,
              pytest.mark.skipif(DPX is None, reason="no dpx binary (set DPX_BIN)")]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # as the node's listener does: a port whose old connections are in TIME_WAIT is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("devnet")
    for i in range(4):
        for off in (0, 7):
            if not _port_free(BASE_PORT + 10 * i + off):
                pytest.fail(f"port {BASE_PORT + 10 * i + off} is busy; set DPX_CLIENT_BASE_PORT")
    subprocess.run([DPX, "testnet", "init", "--validators", "4", "--out", str(d),
                    "--base-port", str(BASE_PORT), "--chain-id", CHAIN], check=True,
                   stdout=subprocess.DEVNULL)
    procs = []
    try:
        for i in range(4):
            log = open(d / f"node{i}.log", "wb")
            procs.append(subprocess.Popen([DPX, "node", "start", "--home", str(d / f"node{i}")],
                                          stdout=log, stderr=subprocess.STDOUT))
        client = Client(f"http://127.0.0.1:{BASE_PORT + 7}", timeout_s=30)
        deadline = time.time() + 120
        while True:
            try:
                if client.status().get("height", 0) >= 1:
                    break
            except Exception:
                pass
            if time.time() > deadline:
                tail = (d / "node0.log").read_bytes()[-3000:].decode(errors="replace")
                pytest.fail(f"devnet produced no block in 120 s; node0 log:\n{tail}")
            time.sleep(0.5)
        genesis = json.loads((d / "genesis.json").read_text())
        yield {"dir": d, "client": client, "genesis": genesis}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _events_of(answer) -> list:
    r = answer.get("receipt", answer)
    return r.get("events", [])


def _attr(answer, kind, key):
    for ev in _events_of(answer):
        if ev["kind"] == kind:
            for a in ev["attrs"]:
                if a["key"] == key:
                    return a["value"]
    raise AssertionError(f"no {kind}.{key} in {json.dumps(answer)[:800]}")


def _has(answer, kind) -> bool:
    return any(ev["kind"] == kind for ev in _events_of(answer))


def _code(answer):
    return answer.get("receipt", answer).get("code")


class Actor:
    def __init__(self, client: Client, key: Keypair):
        self.c = client
        self.key = key
        self.nonce = client.next_nonce(key.public_key)

    def send(self, op: dict, protobuf: bool = False) -> tuple[tx.SignedTx, dict]:
        stx = tx.sign_transaction(self.key, CHAIN, self.nonce, op)
        ans = self.c.submit(stx, wait="commit", timeout_ms=20000, protobuf=protobuf)
        self.nonce += 1
        return stx, ans


def _wait_height(client: Client, h: int, timeout_s: float = 60):
    deadline = time.time() + timeout_s
    while client.status()["height"] < h:
        if time.time() > deadline:
            raise AssertionError(f"height {h} not reached")
        time.sleep(0.3)


def _forbidden(fn, *a, **kw):
    with pytest.raises(RpcError) as err:
        fn(*a, **kw)
    assert err.value.status == 403 and err.value.code == "forbidden", err.value


def _searches_and_history(c, audit_c, employer_c, subject_c, *, product, provider, employer,
                          grant_id, use_stx, revoked_id):
    """The search and history reads over what the flow did: catalogue, decisions, grant
    history and aggregates, each under its read rule."""
    pid = product.hex()
    # ---- catalogue: the listed product is public; found by category, words, provider, grade
    # and price, and left out by filters it fails
    ids = lambda **f: [p["id"] for p in c.iter_catalogue(**f)]  # noqa: E731
    assert pid in ids(category="data_service", q="cv CHECK"), ids(category="data_service")
    assert pid in ids(provider=provider.public_key, grade=3, grade_max=3, price_max=500,
                      domain="employment", limit=1)
    assert pid not in ids(category="report")
    assert pid not in ids(price_max=499)
    assert pid not in ids(grade_max=2)
    assert pid not in ids(q="cv nosuchword")
    assert pid not in ids(listed=False)
    assert pid in ids(listed="any")
    item = next(p for p in c.iter_catalogue(q="cv") if p["id"] == pid)
    assert item["provider"] == provider.public_key.hex() and item["listed"] is True, item
    page = c.catalogue(category="data_service")
    assert page["scanned"] is None, page  # anonymous: no count of hidden products
    assert isinstance(audit_c.catalogue()["scanned"], int)
    with pytest.raises(RpcError) as err:
        c.catalogue(limit=0)
    assert err.value.status == 400 and err.value.code == "bad_query", err.value
    with pytest.raises(RpcError) as err:
        c.catalogue(after="zz")
    assert err.value.status == 400 and err.value.code == "bad_cursor", err.value

    # ---- decisions: the employer's own (it is a party), the same for a supervisor, none for
    # an anonymous caller; newest first; one at a time follows the cursor to the same list
    use_at = c.tx(use_stx.hash)
    mine = list(employer_c.iter_decisions(principal=employer.public_key))
    assert mine, "no decisions for the employer"
    assert all(d["principal"] == employer.public_key.hex() for d in mine), mine
    pos = [(d["height"], d["index"]) for d in mine]
    assert pos == sorted(pos, reverse=True) and len(set(pos)) == len(pos), pos
    used = [d for d in mine if d["tx_hash"] == use_stx.hash.hex()]
    assert len(used) == 1, (use_stx.hash.hex(), mine)
    used = used[0]
    assert used["allowed"] is True and used["code"] == "ok", used
    assert used["resource"] == f'Product::"{pid}"', used
    assert (used["height"], used["index"]) == (use_at["height"], use_at["index"]), (used, use_at)
    assert len(used["policy_hash"]) == 64 and isinstance(used["policy_version"], int), used
    assert list(audit_c.iter_decisions(principal=employer.public_key)) == mine
    assert list(audit_c.iter_decisions(principal=employer.public_key, limit=1)) == mine
    assert list(c.iter_decisions(principal=employer.public_key)) == []
    by_product = list(audit_c.iter_decisions(product=product, action=used["action"]))
    assert used in by_product and all(d["resource"] == used["resource"] for d in by_product)
    assert used in list(audit_c.iter_decisions(resource=used["resource"], outcome="allowed",
                                               from_height=used["height"], to_height=used["height"]))
    assert used not in list(audit_c.iter_decisions(principal=employer.public_key, outcome="denied"))
    for bad in (dict(outcome="maybe"), dict(limit=201), dict(product=product, resource=used["resource"])):
        with pytest.raises(RpcError) as err:
            audit_c.decisions(**bad)
        assert err.value.status == 400 and err.value.code == "bad_query", (bad, err.value)
    with pytest.raises(RpcError) as err:
        audit_c.decisions(before="x.y")
    assert err.value.status == 400 and err.value.code == "bad_cursor", err.value

    # ---- grant history: the consumed grant, for its consumer, subject and a supervisor only
    hist = employer_c.grant_history(grant_id)
    assert hist["grant"] == grant_id.hex() and hist["state"] == "consumed", hist
    assert hist["consumer"] == employer.public_key.hex() and hist["product"] == pid, hist
    assert hist["purpose"] == "hiring-check", hist
    steps = hist["steps"]
    assert [(s["height"], s.get("index", 0)) for s in steps] == sorted((s["height"], s.get("index", 0))
                                                                       for s in steps), steps
    assert steps[0]["step"] == "registered", steps  # issued inline by the use
    consumed = [s for s in steps if s["step"] == "consumed"]
    assert len(consumed) == 1, steps
    assert consumed[0]["tx_hash"] == use_stx.hash.hex() and consumed[0]["height"] == use_at["height"], steps
    assert use_stx.hash.hex() in consumed[0]["tx_proof"], steps
    assert isinstance(consumed[0]["time_ms"], int), steps
    assert subject_c.grant_history(grant_id) == hist
    assert audit_c.grant_history(grant_id.hex()) == hist
    _forbidden(c.grant_history, grant_id)
    # the grant revoked by serial before any use: its subject sees the revocation
    rev = subject_c.grant_history(revoked_id)
    assert rev["state"] == "revoked" and any(s["step"] == "revoked" for s in rev["steps"]), rev
    assert not any(s["step"] == "registered" for s in rev["steps"]), rev  # nobody registered it
    assert audit_c.grant_history(revoked_id) == rev
    _forbidden(c.grant_history, revoked_id)
    with pytest.raises(RpcError) as err:
        audit_c.grant_history(bytes(32))  # supervisors learn that it does not exist
    assert err.value.status == 404 and err.value.code == "not_found", err.value
    _forbidden(employer_c.grant_history, bytes(32))  # others do not
    with pytest.raises(RpcError) as err:
        audit_c.grant_history("nothex")
    assert err.value.status == 400 and err.value.code == "bad_id", err.value

    # ---- aggregates: supervisors only; the index may trail the tip by a moment
    _forbidden(c.aggregates)
    _forbidden(employer_c.aggregates)
    deadline = time.time() + 20
    while True:
        agg = audit_c.aggregates()
        if agg["indexed_height"] >= use_at["height"]:
            break
        assert time.time() < deadline, f"aggregates index stuck at {agg['indexed_height']}"
        time.sleep(0.3)
    assert agg["counted_from_height"] <= 1, agg
    assert agg["from_height"] == 1 and agg["to_height"] == agg["indexed_height"], agg
    counts = agg["counts"]
    assert counts and all(isinstance(v, int) and v >= 0 for v in counts.values()), counts
    # what the flow did up to the use is counted (published counter names)
    for k in ("blocks", "txs", "txs_ok", "txs_refused", "product.listed", "grant.consumed", "grant.refused",
              "grant.revoked", "participant.admitted"):
        assert counts.get(k, 0) >= 1, (k, counts)
    assert counts["txs"] == counts["txs_ok"] + counts["txs_refused"], counts
    # the published counters (AggregateRange.counts' description) are the ones answered
    doc = c.openapi()["components"]["schemas"]["AggregateRange"]["properties"]["counts"]["description"]
    assert all(k in doc for k in counts), (sorted(counts), doc)
    # one height range, then a time series over the same blocks: the buckets add up
    h = agg["indexed_height"]
    one = audit_c.aggregates(from_height=use_at["height"], to_height=use_at["height"])
    assert one["from_height"] == one["to_height"] == use_at["height"], one
    assert sum(one["counts"].values()) > 0, one
    t0 = int(c.block(1)["header"]["time_ms"])
    t1 = int(c.block(h)["header"]["time_ms"]) + 1
    whole = audit_c.aggregates(from_time_ms=t0, to_time_ms=t1)
    interval = max(1000, -(-(t1 - t0) // 20))
    series = audit_c.aggregates(from_time_ms=t0, to_time_ms=t0 + interval * -(-(t1 - t0) // interval),
                                interval_ms=interval)
    assert series["interval_ms"] == interval and series["buckets"], series
    for k, v in whole["counts"].items():
        assert sum(b["counts"].get(k, 0) for b in series["buckets"]) >= v, (k, whole, series)
    for bad in (dict(from_height=1, from_time_ms=t0), dict(from_time_ms=t0, to_time_ms=t1, interval_ms=10)):
        with pytest.raises(RpcError) as err:
            audit_c.aggregates(**bad)
        assert err.value.status == 400, (bad, err.value)


def test_live_marketplace_flow_events_and_proofs(devnet, tmp_path):
    c: Client = devnet["client"]
    d = devnet["dir"]
    genesis = devnet["genesis"]
    assert c.chain_id() == CHAIN
    start_height = c.status()["height"]

    agencies = [Actor(c, Keypair.load(str(d / "keys" / f"agency-{i}.json"))) for i in range(4)]
    agency = agencies[0]
    provider, employer, rater, applicant, auditor, registrar = (Keypair.generate() for _ in range(6))
    # signed readers (SPEC.md §14): a supervisor (auditor) and the grant's consumer
    audit_c = Client(c.base, timeout_s=30, auth=auth.DpxAuth(auditor, CHAIN))
    employer_c = Client(c.base, timeout_s=30, auth=auth.DpxAuth(employer, CHAIN))

    # admissions, built and signed here; one of them sent as protobuf
    for who, role, pb in ((provider, "provider", False), (employer, "consumer", True),
                          (rater, "rating_body", False), (auditor, "auditor", False)):
        stx, ans = agency.send({"type": "admit", "key": who.public_key.hex(), "name": role, "roles": [role]},
                               protobuf=pb)
        assert _code(ans) == "ok", ans
        assert _attr(ans, "participant.admitted", "participant") == who.public_key.hex()

    # the transaction is readable by tx hash (the hash we computed): in full by a supervisor,
    # as a hidden entry (hash, position) by an anonymous caller
    got = audit_c.tx(stx.hash)
    assert json.dumps(got).find(stx.hash.hex()) >= 0 and not got.get("hidden"), got
    anon = c.tx(stx.hash)
    assert anon["hash"] == stx.hash.hex() and anon.get("hidden") is True, anon
    # resubmitting committed bytes answers the receipt (idempotent), never an error
    again = c.submit(stx, wait="check")
    assert again.get("status") == "committed", again

    # the ordinary admit refuses the registrar role: a governance proposal admits it
    # (4 agencies: the proposer and two approvals are more than 2/3)
    _, ans = agency.send({"type": "propose", "action": {"admit_registrar": {
        "key": registrar.public_key.hex(), "name": "Identity Service"}}})
    assert _code(ans) == "ok", ans
    proposal = _attr(ans, "governance.proposed", "proposal")
    executed = _has(ans, "governance.executed")
    for a in agencies[1:]:
        if executed:
            break
        _, ans = a.send({"type": "approve", "proposal": proposal})
        assert _code(ans) == "ok", ans
        executed = _has(ans, "governance.executed")
    assert executed, "admit_registrar was not executed"

    # the registrar enrols the applicant: a keyed hash of the ID number, off-ledger
    secret = os.urandom(32)
    subject = grants.subject_id(secret, "110101199003071234")
    reg = Actor(c, registrar)
    _, ans = reg.send({"type": "enrol_subject", "subject_id": subject.hex(),
                       "subject_key": applicant.public_key.hex()})
    assert _code(ans) == "ok", ans
    assert _attr(ans, "subject.enrolled", "subject") == subject.hex()

    r = Actor(c, rater)
    _, ans = r.send({"type": "set_rating", "participant": provider.public_key.hex(), "rating": 4})
    assert _code(ans) == "ok", ans

    # a product: its id is computed before submitting (SPEC.md §5.4)
    p = Actor(c, provider)
    terms = hashing.blake3(b"terms v1")
    stx, ans = p.send({"type": "list_product", "spec": {
        "name": "CV check", "category": "data_service", "domain": "employment", "grade": 3,
        "price": 500, "terms_hash": terms.hex(),
        "conditions": {"min_consumer_rating": 0, "whitelist_only": False, "purposes": []}}})
    assert _code(ans) == "ok", ans
    product = stx.created_id(CHAIN)
    assert _attr(ans, "product.listed", "product") == product.hex()

    # a one-use grant signed offline by the enrolled subject's key, for a governed purpose code,
    # valid for 24 hours of block time; carried as a compact string
    now_ms = int(c.block("latest")["header"]["time_ms"])
    sg = grants.sign_grant(applicant, CHAIN, subject, employer.public_key, product, "hiring-check",
                           now_ms + 24 * 3600 * 1000, epoch=0)
    compact = grants.to_compact(sg)
    grant = grants.from_compact(compact)
    assert grants.verify_signed_grant(grant, CHAIN)
    grant_id = grants.signed_grant_id(grant)
    e = Actor(c, employer)
    use = {"type": "use_grant", "grant": {"inline": {"grant": {k: (v.hex() if isinstance(v, bytes) else v)
                                                               for k, v in grant["grant"].items()},
                                                     "signature": grant["signature"].hex()}},
           "subject": subject.hex(),
           "product": product.hex(), "purpose": "hiring-check", "request_hash": hashing.blake3(b"cv-1").hex()}
    use_stx, ans = e.send(use)
    assert _code(ans) == "ok", ans
    assert _attr(ans, "grant.consumed", "grant") == grant_id.hex()
    # the second use is refused, and the nonce is still consumed (SPEC.md §5.3)
    _, ans2 = e.send(use)
    assert _code(ans2) == "failed", ans2
    assert c.next_nonce(employer.public_key) == e.nonce

    # the subject revokes a grant by its serial (signed by the subject's key; the id is derived
    # from the signer's subject id), then every older grant at once (revoke_all_grants)
    subj = Actor(c, applicant)

    def _refused(op):
        try:
            _, a = e.send(op)
        except RpcError as err:
            e.nonce = c.next_nonce(employer.public_key)
            return err.status in (400, 403, 409)
        return _code(a) in ("failed", "invalid")

    def _use_of(signed, rh):
        return dict(use, grant={"inline": {"grant": {k: (v.hex() if isinstance(v, bytes) else v)
                                                     for k, v in signed["grant"].items()},
                                           "signature": signed["signature"].hex()}},
                    request_hash=hashing.blake3(rh).hex())

    sg2 = grants.sign_grant(applicant, CHAIN, subject, employer.public_key, product, "hiring-check",
                            now_ms + 3600 * 1000, epoch=0)
    _, ans = subj.send({"type": "revoke_grant", "serial": sg2["grant"]["serial"].hex()})
    assert _code(ans) == "ok", ans
    assert _attr(ans, "grant.revoked", "grant") == grants.signed_grant_id(sg2).hex()
    assert _refused(_use_of(sg2, b"cv-revoked"))
    sg3 = grants.sign_grant(applicant, CHAIN, subject, employer.public_key, product, "hiring-check",
                            now_ms + 3600 * 1000, epoch=0)
    _, ans = subj.send({"type": "revoke_all_grants"})
    assert _code(ans) == "ok", ans
    assert _attr(ans, "subject.grants_revoked", "grant_epoch") == "1"
    assert _refused(_use_of(sg3, b"cv-old-epoch"))
    # a subject's key cannot sign a participant's operation (subject_cannot_sign)
    with pytest.raises(RpcError) as no_sign:
        c.submit(tx.sign_transaction(applicant, CHAIN, subj.nonce, {"type": "set_rating",
                 "participant": provider.public_key.hex(), "rating": 1}), wait="check")
    assert no_sign.value.code == "subject_cannot_sign", no_sign.value

    # the read policy: the grant is the subject's and the consumer's (and supervisors'), not
    # an anonymous caller's (403 whether or not it exists)
    with pytest.raises(RpcError) as no:
        c.state("grants", grant_id)
    assert no.value.status == 403 and no.value.code == "forbidden", no.value
    assert employer_c.state("grants", grant_id)
    subject_c = Client(c.base, timeout_s=30, auth=auth.DpxAuth(applicant, CHAIN))
    assert subject_c.state("grants", grant_id)
    assert audit_c.state("usage", grant_id)

    # the same bytes again answer their receipt (SPEC.md §5.6: idempotent resubmission) ...
    first = tx.sign_transaction(employer, CHAIN, 0, use)
    ans3 = c.submit(first, wait="commit", timeout_ms=20000)
    assert ans3.get("status") == "committed" and _code(ans3) == "ok", ans3
    # ... other bytes with a used nonce are refused at admission: nonce_too_low, never executed
    stale = tx.sign_transaction(employer, CHAIN, 0, dict(use, request_hash=hashing.blake3(b"cv-2").hex()))
    with pytest.raises(RpcError) as err:
        c.submit(stale, wait="commit", timeout_ms=20000)
    assert err.value.status == 409 and err.value.code == "nonce_too_low", err.value

    _searches_and_history(c, audit_c, employer_c, subject_c, product=product, provider=provider,
                          employer=employer, grant_id=grant_id, use_stx=use_stx,
                          revoked_id=grants.signed_grant_id(sg2))

    # ---- events: follow from the start, break off mid-way, resume, compare with one pass
    tip = c.status()["height"]
    _wait_height(c, tip + 1)
    end = events.Cursor(tip, 0)
    one_pass = []
    for ev in events.Follower(audit_c, from_height=start_height):
        if ev.cursor >= end:
            break
        one_pass.append((str(ev.cursor), ev.kind))
    assert any(k == "grant.consumed" for _, k in one_pass)
    assert [events.Cursor.parse(x) for x, _ in one_pass] == sorted(events.Cursor.parse(x) for x, _ in one_pass)
    assert len({x for x, _ in one_pass}) == len(one_pass)
    # now with a break right after a transaction's first contract event (mid-block)
    mid = next(i for i, (_, k) in enumerate(one_pass) if k == "grant.consumed")
    f1 = events.Follower(audit_c, from_height=start_height)
    resumed = []
    for ev in f1:
        resumed.append((str(ev.cursor), ev.kind))
        if len(resumed) == mid + 1:
            break
    f2 = events.Follower(audit_c, from_height=start_height)
    f2.last = events.Cursor.parse(resumed[-1][0])
    for ev in f2:
        if ev.cursor >= end:
            break
        resumed.append((str(ev.cursor), ev.kind))
    assert resumed == one_pass

    # ---- every block so far: header id, tx hashes and root, certificate, parent links
    from dpx_client import chain as chain_mod
    vset = chain_mod.ValidatorSet.from_list(genesis["app"]["validators"], sort=True)
    prev_id = bytes(32)
    tip = c.status()["height"]
    for height in range(1, tip + 1):
        blk = audit_c.block(height)
        bid = chain_mod.verify_block(blk, vset, CHAIN)
        hdr = blk["header"]
        assert bytes.fromhex(hdr["parent_id"]) == prev_id
        assert hdr["validator_set_hash"] == vset.hash(CHAIN).hex()
        prev_id = bid
    # a tampered block is refused
    bad = copy.deepcopy(audit_c.block(tip))
    bad["header"]["time_ms"] += 1
    with pytest.raises(chain_mod.ChainError):
        chain_mod.verify_block(bad, vset, CHAIN)
    # an anonymous caller sees the block's transactions hidden: their bytes (the tx tree's
    # leaves) are not there, so the block cannot be checked from that view
    anon_blk = c.block(start_height + 1)
    if any(t.get("hidden") for t in anon_blk["txs"]):
        with pytest.raises(chain_mod.ChainError, match="hidden"):
            chain_mod.verify_block(anon_blk, vset, CHAIN)

    # ---- proofs: the RPC's bundle verifies in Python
    _wait_height(c, c.status()["height"] + 1)
    v = audit_c.prove("grants", grant_id, genesis)
    assert v.value is not None and v.key == grants.state_key(grant_id)
    from dpx_client import state
    rec = state.decode_value(v.key, v.value)
    assert rec["state"] == 1  # consumed
    # the absence of an unknown grant is proven too (or the node answers 404)
    try:
        absent = audit_c.prove("grants", bytes(32), genesis)
        assert absent.value is None
    except RpcError as err:
        assert err.status == 404

    # ---- agreement with `dpx audit verify` on valid and tampered bundles
    proof_file = tmp_path / "grant-proof.json"
    auditor_file = tmp_path / "auditor.json"
    auditor.save(str(auditor_file))
    with open(proof_file, "w") as f:
        subprocess.run([DPX, "audit", "prove", "grants", grant_id.hex(), "--rpc", c.base,
                        "--key", str(auditor_file)], check=True, stdout=f)
    gpath = str(d / "genesis.json")

    def both(doc) -> tuple[bool, bool]:
        path = tmp_path / "b.json"
        path.write_text(json.dumps(doc))
        rust = subprocess.run([DPX, "audit", "verify", str(path), "--genesis", gpath],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        try:
            bundle.verify_bundle(doc, genesis)
            py = True
        except bundle.BundleError:
            py = False
        return rust, py

    doc = json.loads(proof_file.read_text())
    assert both(doc) == (True, True)
    b = doc["bundle"]
    edits = []
    for path in (("value",), ("key",), ("certificate",), ("header", "state_root"), ("header", "parent_id"),
                 ("proof", "leaf", "value_hash"), ("validators", 0, "key")):
        for pos in (0, 9, -1):
            t = copy.deepcopy(doc)
            o = t["bundle"]
            for k in path[:-1]:
                o = o[k]
            raw = bytearray(bytes.fromhex(o[path[-1]]))
            raw[pos] ^= 0x01
            o[path[-1]] = raw.hex()
            edits.append((path, t))
    t = copy.deepcopy(doc); t["bundle"]["version"] += 1; edits.append((("version",), t))
    t = copy.deepcopy(doc); t["bundle"]["validators"][1]["power"] += 1; edits.append((("power",), t))
    t = copy.deepcopy(doc); t["bundle"]["header"]["time_ms"] += 1; edits.append((("time_ms",), t))
    assert b["proof"]["siblings"]
    t = copy.deepcopy(doc); t["bundle"]["proof"]["siblings"].pop(); edits.append((("sibling",), t))
    disagreements = []
    for what, t in edits:
        rust, py = both(t)
        if (rust, py) != (False, False):
            disagreements.append((what, rust, py))
    assert not disagreements, disagreements

    # ---- a transaction's inclusion and receipt (SPEC.md §11.2): the auditor's admission,
    # committed long ago, so the next block certifies its receipt
    t = audit_c.prove_tx(stx.hash, genesis)
    assert t.tx_hash == stx.hash and t.tx == stx.raw and t.receipt is not None
    with pytest.raises(RpcError) as err:
        c.tx_proof(stx.hash)  # anonymous: not a party
    assert err.value.status == 403
    tx_file = tmp_path / "tx-proof.json"
    with open(tx_file, "w") as f:
        subprocess.run([DPX, "audit", "prove-tx", stx.hash.hex(), "--rpc", c.base,
                        "--key", str(auditor_file)], check=True, stdout=f)
    tdoc = json.loads(tx_file.read_text())

    def both_tx(doc) -> tuple[bool, bool]:
        path = tmp_path / "t.json"
        path.write_text(json.dumps(doc))
        rust = subprocess.run([DPX, "audit", "verify", str(path), "--genesis", gpath],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        try:
            bundle.verify_tx_bundle(doc, genesis)
            py = True
        except bundle.BundleError:
            py = False
        return rust, py

    assert both_tx(tdoc) == (True, True)
    tx_disagreements = []
    for path in (("tx",), ("tx_proof", "siblings", 0), ("block", "header", "tx_root"), ("block", "certificate"),
                 ("receipt", "receipt"), ("receipt", "next", "header", "prev_receipts_hash"),
                 ("receipt", "next", "certificate")):
        t2 = copy.deepcopy(tdoc)
        o = t2["bundle"]
        for k in path[:-1]:
            o = o[k]
        if isinstance(o, list) and not o:
            continue  # a one-transaction block has no siblings
        raw = bytearray(bytes.fromhex(o[path[-1]]))
        raw[-1] ^= 0x01
        o[path[-1]] = raw.hex()
        if both_tx(t2) != (False, False):
            tx_disagreements.append((path, both_tx(t2)))
    assert not tx_disagreements, tx_disagreements

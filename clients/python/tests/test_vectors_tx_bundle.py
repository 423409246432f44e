"""tx_proof_bundle.json (SPEC.md §11.2): a transaction and its receipt proved against
certified headers, and tampering refused."""

import copy
import json
import subprocess
import sys

import pytest
from conftest import h, load

from dpx_client import bundle, hashing


def test_valid_tx_bundle_verifies_with_its_receipt():
    v = load("tx_proof_bundle.json")
    b = v["bundle"]
    got = bundle.verify_tx_bundle(b, v["genesis"])
    assert got.tx == h(b["tx"]) and got.tx_hash == hashing.blake3(got.tx)
    assert (got.height, got.index) == (b["height"], b["index"])
    assert got.receipt == h(b["receipt"]["receipt"])
    # the same bundle inside `dpx audit prove-tx` output
    doc = {"kind": "tx", "id": b["tx_hash"], "bundle": b}
    assert bundle.is_tx_bundle(doc)
    assert bundle.verify_tx_bundle(doc, v["genesis"]).receipt == got.receipt


def test_pending_bundle_proves_the_inclusion_only():
    v = load("tx_proof_bundle.json")
    p = v["pending"]
    assert p["receipt"] is None
    got = bundle.verify_tx_bundle(p, v["genesis"])
    assert got.receipt is None
    assert str(p["height"] + 1) in got.receipt_pending


@pytest.mark.parametrize("i", range(8))
def test_tampered_tx_bundles_refused(i):
    v = load("tx_proof_bundle.json")
    t = v["tampered"][i]
    assert t["valid"] is False
    with pytest.raises(bundle.BundleError) as e:
        bundle.verify_tx_bundle(t["bundle"], v["genesis"])
    assert str(e.value)


def _flip(text: str, i: int) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[i] ^= 1
    return raw.hex()


@pytest.mark.parametrize("what,edit,reason", [
    ("tx", lambda b: b.update(tx=_flip(b["tx"], 0)), "hash to tx_hash"),
    ("tx proof", lambda b: b["tx_proof"]["siblings"].__setitem__(0, _flip(b["tx_proof"]["siblings"][0], 0)), "tx_root"),
    ("header", lambda b: b["block"]["header"].update(time_ms=b["block"]["header"]["time_ms"] + 1), "another block"),
    ("certificate", lambda b: b["block"].update(certificate=_flip(b["block"]["certificate"], 40)), ""),
    ("receipt", lambda b: b["receipt"].update(receipt=_flip(b["receipt"]["receipt"], 0)), "prev_receipts_hash"),
    ("receipt proof", lambda b: b["receipt"]["proof"].update(index=0), "another index"),
    ("next header", lambda b: b["receipt"]["next"]["header"].update(height=b["height"] + 2), ""),
    ("next certificate", lambda b: b["receipt"]["next"].update(certificate=_flip(b["receipt"]["next"]["certificate"], 40)), ""),
    ("chain", lambda b: b.update(chain_id="other"), "chain"),
    ("receipt not an object", lambda b: b.update(receipt=3), "receipt"),
])
def test_each_part_matters(what, edit, reason):
    v = load("tx_proof_bundle.json")
    b = copy.deepcopy(v["bundle"])
    edit(b)
    with pytest.raises(bundle.BundleError) as e:
        bundle.verify_tx_bundle(b, v["genesis"])
    assert reason in str(e.value), (what, str(e.value))


def test_every_byte_flip_is_refused():
    v = load("tx_proof_bundle.json")
    base = v["bundle"]
    flips = 0

    def walk(obj, path=()):
        if isinstance(obj, dict):
            for k, x in obj.items():
                yield from walk(x, path + (k,))
        elif isinstance(obj, list):
            for i, x in enumerate(obj):
                yield from walk(x, path + (i,))
        elif isinstance(obj, str) and path[-1] != "chain_id":
            yield path, obj

    for path, text in walk(base):
        raw = bytes.fromhex(text)
        for i in range(0, len(raw), 7):  # every 7th byte of every field keeps this quick
            b = copy.deepcopy(base)
            o = b
            for p in path[:-1]:
                o = o[p]
            bad = bytearray(raw)
            bad[i] ^= 0x80
            o[path[-1]] = bad.hex()
            with pytest.raises(bundle.BundleError):
                bundle.verify_tx_bundle(b, v["genesis"])
            flips += 1
    assert flips > 100


def test_cli_verify_detects_the_kind(tmp_path):
    v = load("tx_proof_bundle.json")
    g = tmp_path / "genesis.json"
    g.write_text(json.dumps(v["genesis"]))
    good = tmp_path / "tx.json"
    good.write_text(json.dumps({"kind": "tx", "id": v["bundle"]["tx_hash"], "bundle": v["bundle"]}))
    run = lambda f: subprocess.run([sys.executable, "-m", "dpx_client.cli", "verify", str(f),
                                    "--genesis", str(g)], capture_output=True, text=True)
    r = run(good)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["kind"] == "tx" and out["receipt_verified"] is True
    bad = tmp_path / "bad.json"
    b = copy.deepcopy(v["bundle"])
    b["receipt"]["receipt"] = _flip(b["receipt"]["receipt"], 0)
    bad.write_text(json.dumps({"kind": "tx", "bundle": b}))
    r = run(bad)
    assert r.returncode == 1 and "prev_receipts_hash" in r.stderr

"""Signed RPC requests (the RFC 9421 profile). The vector file spec/vectors/rpc_request.json
comes from the node's implementation; its test skips only while that file is absent."""

import base64
import hashlib
import json

import pytest
from conftest import VECTORS

from dpx_client import auth, hashing
from dpx_client.keys import Keypair, verify_digest

KEY = Keypair.from_seed(bytes([7]) * 32)
CHAIN = "dpx-devnet"
NOW = 1764489600


def test_signature_base_layout():
    params = auth.signature_params(["@method", "@path", "@query", "content-digest"], NOW,
                                   "Zk3mX1q9b2c4d5e6", KEY.public_key.hex())
    base = auth.signature_base("post", "/v1/txs", "wait=commit", "sha-256=:X:", params)
    assert base.split("\n") == [
        '"@method": POST',
        '"@path": /v1/txs',
        '"@query": ?wait=commit',
        '"content-digest": sha-256=:X:',
        f'"@signature-params": ("@method" "@path" "@query" "content-digest");created={NOW};'
        f'nonce="Zk3mX1q9b2c4d5e6";keyid="{KEY.public_key.hex()}";alg="dpx-ed25519-blake3"',
    ]
    assert not base.endswith("\n")
    assert auth.signature_base("GET", "/v1/events", "", None, "()").split("\n")[2] == '"@query": ?'


def test_sign_then_verify_with_body():
    body = b'{"tx": "00"}'
    hd = auth.sign_request(KEY, CHAIN, "POST", "/v1/txs", "wait=commit", body, created=NOW,
                           nonce="Zk3mX1q9b2c4d5e6")
    assert hd["Content-Digest"] == "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    assert hd["Signature-Input"].startswith('dpx=("@method" "@path" "@query" "content-digest");created=')
    # the signature is ed25519 over H(dpx/rpc-request/v1, chain, base)
    params = hd["Signature-Input"][4:]
    base = auth.signature_base("POST", "/v1/txs", "wait=commit", hd["Content-Digest"], params)
    sig = base64.b64decode(hd["Signature"][5:-1])
    assert verify_digest(KEY.public_key, hashing.H("dpx/rpc-request/v1", CHAIN, base.encode()), sig)
    v = auth.verify_request(hd, "POST", "/v1/txs", "wait=commit", body, CHAIN, NOW)
    assert v.key == KEY.public_key and v.nonce == "Zk3mX1q9b2c4d5e6"


def test_get_without_body_covers_no_digest():
    hd = auth.sign_request(KEY, CHAIN, "GET", "/v1/events", "from_height=3", None, created=NOW)
    assert "Content-Digest" not in hd
    assert '("@method" "@path" "@query");' in hd["Signature-Input"]
    auth.verify_request(hd, "GET", "/v1/events", "from_height=3", None, CHAIN, NOW + 60)


@pytest.mark.parametrize("what", ["method", "path", "query", "body", "chain", "stale", "future",
                                  "expired", "digest", "sig", "alg", "label", "nonce", "keyid"])
def test_verify_refuses(what):
    body = b"abc"
    hd = auth.sign_request(KEY, CHAIN, "POST", "/v1/txs", "", body, created=NOW, expires=NOW + 30,
                           nonce="abcdefghijklmnop")
    args = dict(method="POST", path="/v1/txs", query="", body=body, chain_id=CHAIN, now=NOW)
    if what == "method":
        args["method"] = "PUT"
    elif what == "path":
        args["path"] = "/v1/txs/batch"
    elif what == "query":
        args["query"] = "wait=commit"
    elif what == "body":
        args["body"] = b"abd"
    elif what == "chain":
        args["chain_id"] = "other"
    elif what == "stale":
        args["now"] = NOW + 61
    elif what == "future":
        args["now"] = NOW - 61
    elif what == "expired":
        args["now"] = NOW + 31
    elif what == "digest":
        hd["Content-Digest"] = auth.content_digest(b"xyz")
    elif what == "sig":
        s = bytearray(base64.b64decode(hd["Signature"][5:-1]))
        s[0] ^= 1
        hd["Signature"] = "dpx=:" + base64.b64encode(bytes(s)).decode() + ":"
    elif what == "alg":
        hd["Signature-Input"] = hd["Signature-Input"].replace(auth.ALG, "ed25519")
    elif what == "label":
        hd["Signature-Input"] = "sig1" + hd["Signature-Input"][3:]
    elif what == "nonce":
        hd["Signature-Input"] = hd["Signature-Input"].replace("abcdefghijklmnop", "short")
    elif what == "keyid":
        hd["Signature-Input"] = hd["Signature-Input"].replace(KEY.public_key.hex(), "01" + "00" * 31)
    with pytest.raises(auth.AuthError):
        auth.verify_request(hd, **args)


def test_nonces_are_random_and_well_formed():
    ns = {auth.random_nonce() for _ in range(100)}
    assert len(ns) == 100
    assert all(auth._NONCE.match(n) for n in ns)
    with pytest.raises(ValueError):
        auth.sign_request(KEY, CHAIN, "GET", "/", nonce="bad nonce!")


def test_requests_hook_signs_prepared_request():
    import requests
    req = requests.Request("POST", "http://127.0.0.1:1/v1/txs?wait=commit", json={"tx": "00"},
                           auth=auth.DpxAuth(KEY, CHAIN)).prepare()
    import time
    v = auth.verify_request(dict(req.headers), "POST", "/v1/txs", "wait=commit", req.body, CHAIN, int(time.time()))
    assert v.key == KEY.public_key


# ---------------------------------------------------------------- the node's vector

def _cases(doc):
    if isinstance(doc, dict) and isinstance(doc.get("cases"), list):
        return doc["cases"]
    if isinstance(doc, dict) and isinstance(doc.get("valid"), list):
        return doc["valid"]
    return [doc]


def test_rpc_request_vector():
    """spec/vectors/rpc_request.json: each case's params, base, preimage, digest, signature and
    headers, exactly; and verify_request accepts the headers."""
    doc = json.loads((VECTORS / "rpc_request.json").read_text())
    cases = doc["cases"]
    assert cases
    for c in cases:
        kp = Keypair.from_seed(bytes.fromhex(c["secret_seed"]))
        assert kp.public_key.hex() == c["public_key"]
        chain, query = c["chain_id"], c["query"] or ""
        body = c["body"].encode("utf-8") if c["body"] else None
        assert c["domain"] == auth.DOMAIN
        hd = auth.sign_request(kp, chain, c["method"], c["path"], query, body,
                               created=c["created"], nonce=c["nonce"], expires=c.get("expires"))
        assert hd["Signature-Input"] == "dpx=" + c["signature_params"]
        assert hd.get("Content-Digest") == c["content_digest"]
        base = auth.signature_base(c["method"], c["path"], query, c["content_digest"],
                                   c["signature_params"])
        assert base == c["signature_base"]
        assert hashing.preimage(auth.DOMAIN, chain, base.encode()).hex() == c["preimage"]
        assert auth.request_digest(chain, base).hex() == c["digest"]
        assert hd["Signature"] == "dpx=:" + base64.b64encode(bytes.fromhex(c["signature"])).decode() + ":"
        want = {h["name"]: h["value"] for h in c["headers"]}
        assert {k.lower(): v for k, v in hd.items()} == want
        v = auth.verify_request(hd, c["method"], c["path"], query, body, chain, now=c["created"])
        assert v.key == kp.public_key and v.nonce == c["nonce"]

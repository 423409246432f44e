"""transactions.json, grants.json, ids.json, decoding.json (SPEC.md §4-§6, §8.1)."""

import pytest
from conftest import h, load

from dpx_client import grants, hashing, proto, state, tx
from dpx_client.keys import Keypair


def test_transactions_build_bit_for_bit():
    v = load("transactions.json")
    chain = v["chain_id"]
    assert len(v["transactions"]) == 14
    for c in v["transactions"]:
        kp = Keypair.from_seed(h(c["signer_seed"]))
        assert kp.public_key.hex() == c["signer"]
        body = c["body"]
        assert body["chain_id"] == chain
        stx = tx.sign_transaction(kp, chain, body["nonce"], body["op"], body["expiry_height"])
        assert stx.body_bytes.hex() == c["body_bytes"], c["name"]
        assert hashing.H(hashing.TX, chain, stx.body_bytes).hex() == c["signing_digest"]
        assert stx.signature.hex() == c["signature"]
        assert stx.raw.hex() == c["signed_transaction"]
        assert stx.hash.hex() == c["tx_hash"]
        # decoding gives back the JSON view
        dec = tx.decode_transaction(h(c["signed_transaction"]), chain)
        assert dec.body_json() == body, c["name"]
        derived = c["derived"] or {}
        for kind in ("product", "demand", "order", "proposal"):
            if kind in derived:
                assert stx.created_id(chain).hex() == derived[kind]
        if "new_key_seed" in derived:
            new = Keypair.from_seed(h(derived["new_key_seed"]))
            if body["op"]["type"] == "rotate_subject_key":
                sid = h(body["op"]["subject_id"])
                assert tx.rotate_subject_key_op(sid, new, chain) == body["op"]
            else:
                assert tx.rotate_key_op(kp, new, chain) == body["op"]


def test_transaction_refused_on_other_chain_and_bad_signature():
    c = load("transactions.json")["transactions"][0]
    raw = h(c["signed_transaction"])
    with pytest.raises(tx.TxRefused, match="wrong chain"):
        tx.decode_transaction(raw, "other-chain")
    env = proto.decode("SignedTransaction", raw)
    env["signature"] = bytes([env["signature"][0] ^ 1]) + env["signature"][1:]
    with pytest.raises(tx.TxRefused, match="bad signature"):
        tx.decode_transaction(proto.encode("SignedTransaction", env), "dpx-spec")


def test_every_byte_flip_of_a_transaction_is_refused():
    """Flip each byte of a signed transaction: it must never decode as the same valid tx."""
    c = load("transactions.json")["transactions"][2]
    raw = h(c["signed_transaction"])
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(tx.TxRefused):
            tx.decode_transaction(bytes(bad), "dpx-spec")


def test_grant_vector():
    v = load("grants.json")
    chain = v["chain_id"]
    key = Keypair.from_seed(h(v["subject_seed"]))
    g = v["grant"]
    sid = grants.subject_id(h(v["registrar_secret"]), v["identifier"])
    assert sid.hex() == v["subject_id"] == g["subject"]
    assert key.public_key.hex() == g["key"]
    assert grants.grant_bytes(g).hex() == v["grant_bytes"]
    assert hashing.H(hashing.GRANT, chain, h(v["grant_bytes"])).hex() == v["digest"]
    sg = grants.sign_grant(key, chain, sid, h(g["consumer"]), h(g["product"]), g["purpose"],
                           g["expires_at_ms"], epoch=g["epoch"], serial=h(g["serial"]))
    assert sg["signature"].hex() == v["signature"]
    assert grants.encode_signed_grant(sg).hex() == v["signed_grant"]
    assert grants.to_compact(sg) == v["compact"]
    back = grants.from_compact(v["compact"])
    assert back == sg
    assert grants.verify_signed_grant(back, chain)
    assert not grants.verify_signed_grant(back, "other-chain")
    gid = grants.signed_grant_id(sg)
    assert gid.hex() == v["id"]
    assert grants.state_key(gid).hex() == v["state_key"]


def test_object_ids():
    v = load("ids.json")
    for c in v["object_ids"]:
        pre = hashing.preimage(hashing.OBJECT_ID, c["chain_id"], c["kind"].encode(), h(c["signer"]),
                               hashing.u64le(c["nonce"]))
        assert pre.hex() == c["preimage"]
        assert tx.object_id(c["kind"], c["chain_id"], h(c["signer"]), c["nonce"]).hex() == c["id"]


def test_state_keys():
    v = load("ids.json")
    seen = set()
    for c in v["state_keys"]:
        key = h(c["key"])
        assert key.startswith(c["text"].split("/")[0].encode() + b"/") or key.startswith(b"meta/")
        seen.add(key.split(b"/")[0])
    # every RPC kind we map is a form the vectors show
    for kind, (prefix, _m) in state.KINDS.items():
        assert prefix.rstrip(b"/") in seen, kind
    # and our builder gives exactly the vectors' keys for the id-keyed forms
    by_what = {c["what"]: h(c["key"]) for c in v["state_keys"]}
    for what, key in by_what.items():
        prefix = key.split(b"/")[0] + b"/"
        for kind, (p, _m) in state.KINDS.items():
            if p == prefix and kind != "policies" and len(key) == len(p) + 32:
                assert state.state_key(kind, key[len(p):]) == key, what


def _accepts(case) -> bool:
    raw = h(case["bytes"])
    try:
        if case["what"] == "signed_transaction":
            tx.decode_transaction(raw, "dpx-spec")
        elif case["what"] == "signed_grant":
            grants.decode_signed_grant(raw)
        elif case["what"] == "header":
            proto.decode("Header", raw)
        else:
            raise AssertionError(case["what"])
    except (tx.TxRefused, grants.GrantError, proto.DecodeError):
        return False
    return True


def test_decoding_cases():
    v = load("decoding.json")
    assert v["cases"]
    for c in v["cases"]:
        assert _accepts(c) == c["accepted"], c["name"]
    for c in v["compact_cases"]:
        try:
            grants.from_compact(c["text"])
            ok = True
        except grants.GrantError:
            ok = False
        assert ok == c["accepted"], c["name"]

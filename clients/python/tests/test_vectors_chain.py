"""blocks.json, consensus.json, state_tree.json, events.json (SPEC.md §7, §8, §10)."""

import pytest
from conftest import h, load

from dpx_client import chain, events, hashing, proto, state


def test_headers_and_block_ids():
    v = load("blocks.json")
    for c in v["headers"]:
        assert chain.header_bytes(c["header"]).hex() == c["header_bytes"]
        assert chain.block_id(c["header"]).hex() == c["block_id"]
        assert proto.to_json("Header", proto.decode("Header", h(c["header_bytes"]))) == c["header"]


def test_block_bytes():
    b = load("blocks.json")["block"]
    blk = proto.decode("Block", h(b["block_bytes"]))
    assert [t.hex() for t in blk["txs"]] == b["txs"]
    assert hashing.H(hashing.HEADER, blk["header"]["chain_id"],
                     proto.encode("Header", blk["header"])).hex() == b["header_block_id"]
    assert chain.tx_root(blk["txs"]) == blk["header"]["tx_root"]


def test_trees_and_proofs():
    v = load("blocks.json")
    sizes = [len(t["items"]) for t in v["trees"]]
    assert sizes == [0, 1, 2, 3, 5, 7]
    for t in v["trees"]:
        items = [h(x) for x in t["items"]]
        assert [chain.tx_leaf(x).hex() for x in items] == t["leaf_hashes"]
        assert [chain.receipt_leaf(x).hex() for x in items] == t["receipt_leaf_hashes"]
        assert chain.tx_root(items).hex() == t["tx_root"]
        assert chain.receipts_root(items).hex() == t["receipts_root"]
        root = h(t["tx_root"])
        for p in t["proofs"]:
            mp = proto.decode("MerkleProof", h(p["protobuf"]))
            assert mp["index"] == p["index"] and [s.hex() for s in mp["siblings"]] == p["siblings"]
            leaf = chain.tx_leaf(items[p["index"]])
            assert chain.verify_merkle_proof(root, leaf, p["index"], len(items), mp["siblings"])
            # refused: other index, other leaf, a sibling dropped or flipped
            if len(items) > 1:
                assert not chain.verify_merkle_proof(root, leaf, (p["index"] + 1) % len(items),
                                                     len(items), mp["siblings"])
                assert not chain.verify_merkle_proof(root, bytes(32), p["index"], len(items), mp["siblings"])
                assert not chain.verify_merkle_proof(root, leaf, p["index"], len(items), mp["siblings"][:-1])
                bad = [bytes([s[0] ^ 1]) + s[1:] for s in mp["siblings"]]
                assert not chain.verify_merkle_proof(root, leaf, p["index"], len(items), bad)


def test_validator_set_hash_and_quorum():
    v = load("consensus.json")
    vs = chain.ValidatorSet.from_list(v["validators"])
    assert vs.total_power == v["total_power"] and vs.quorum == v["quorum"]
    assert vs.hash(v["chain_id"]).hex() == v["validator_set_hash"]["hash"]
    parts = [hashing.u64le(len(vs.validators))]
    for k, p in vs.validators:
        parts += [k, hashing.u64le(p)]
    assert [x.hex() for x in parts] == v["validator_set_hash"]["parts"]


def test_votes_and_proposals():
    v = load("consensus.json")
    chain_id = v["chain_id"]
    from dpx_client.keys import Keypair, verify_digest
    seeds = [Keypair.from_seed(h(s)) for s in v["validator_seeds"]]
    by_key = {k.public_key: k for k in seeds}
    vs = chain.ValidatorSet.from_list(v["validators"])
    for c in v["votes"]:
        vt = c["vote"]
        kind = {"prevote": 1, "precommit": 2}[vt["kind"].lower()]
        vid = h(vt["value_id"]) if vt["value_id"] else None
        sb = chain.vote_sign_bytes(kind, vt["height"], vt["round"], vid)
        assert sb.hex() == c["sign_bytes"]
        d = hashing.H(hashing.VOTE, chain_id, sb)
        assert d.hex() == c["digest"]
        key = vs.validators[vt["validator"]][0]
        assert by_key[key].sign_digest(d).hex() == c["signature"]
        assert verify_digest(key, d, h(c["signature"]))
        w = proto.decode("SignedMessage", h(c["wire"]))
        assert w["vote"]["signature"].hex() == c["signature"]
    for c in v["proposals"]:
        p = c["proposal"]
        sb = chain.proposal_sign_bytes(p["height"], p["round"], h(p["value_id"]), p["pol_round"])
        assert sb.hex() == c["sign_bytes"]
        d = hashing.H(hashing.PROPOSAL, chain_id, sb)
        assert d.hex() == c["digest"]
        key = vs.validators[p["proposer"]][0]
        assert verify_digest(key, d, h(c["signature"]))
        w = proto.decode("SignedMessage", h(c["wire"]))
        assert w["proposal"]["signature"].hex() == c["signature"]


def test_certificates():
    v = load("consensus.json")
    vs = chain.ValidatorSet.from_list(v["validators"])
    block_id = h(v["header"]["block_id"])
    assert chain.block_id(v["header"]["header"]) == block_id
    assert {c["valid"] for c in v["certificates"]} == {True, False}
    for c in v["certificates"]:
        raw = h(c["certificate_bytes"])
        assert hashing.blake3(raw).hex() == c["blake3"]
        cert = chain.decode_certificate(raw)
        assert cert["value_id"] == block_id
        try:
            chain.verify_certificate(cert, vs, v["chain_id"])
            ok = True
        except chain.ChainError:
            ok = False
        assert ok == c["valid"], c["name"]


def test_state_tree_root():
    v = load("state_tree.json")
    entries = {}
    for e in v["entries"]:
        k, val = h(e["key"]), h(e["value"])
        assert hashing.blake3(k).hex() == e["key_hash"]
        assert hashing.blake3(val).hex() == e["value_hash"]
        assert state.leaf_hash(h(e["key_hash"]), h(e["value_hash"])).hex() == e["leaf_hash"]
        entries[k] = val
    assert state.root_of(entries).hex() == v["root"]
    assert state.root_of({}).hex() == v["empty_root"]
    for ch in v["version_1"]["changes"]:
        if ch["value"] is None:
            entries.pop(h(ch["key"]))
        else:
            entries[h(ch["key"])] = h(ch["value"])
    assert state.root_of(entries).hex() == v["version_1"]["root"]


def test_state_proofs():
    v = load("state_tree.json")
    root = h(v["root"])
    kinds = set()
    for c in v["proofs"]:
        kinds.add(c["kind"])
        key = h(c["key"])
        value = None if c["value"] is None else h(c["value"])
        pj = state.proof_from_json(c["proof"])
        pp = state.proof_from_protobuf(h(c["proof_protobuf"]))
        assert pj == pp
        state.verify_proof(root, key, value, pj)
        with pytest.raises(state.ProofError):
            state.verify_proof(root, key, (value or b"") + b"x", pj)
        with pytest.raises(state.ProofError):
            state.verify_proof(bytes(32), key, value, pj)
        if value is not None:
            with pytest.raises(state.ProofError):
                state.verify_proof(root, key, None, pj)  # present key claimed absent
        for i in range(len(pj["siblings"])):
            bad = dict(pj, siblings=list(pj["siblings"]))
            bad["siblings"][i] = bytes([bad["siblings"][i][0] ^ 1]) + bad["siblings"][i][1:]
            with pytest.raises(state.ProofError):
                state.verify_proof(root, key, value, bad)
    assert any(k.startswith("inclusion") for k in kinds) and any(k.startswith("exclusion") for k in kinds)


def test_event_cursors():
    v = load("events.json")
    got = events.expected_events(v["height"], v["receipts"])
    assert got == [(e["kind"], e["cursor"], e["tx_hash"]) for e in v["events"]]
    cursors = [events.Cursor.parse(e["cursor"]) for e in v["events"]]
    assert cursors == sorted(cursors)
    assert events.Cursor.parse("7.17") > events.Cursor.parse("7.3")
    for bad in ["7", "7.", ".1", "a.b", "7.1.2", "-1.0", "07.1", ""]:
        with pytest.raises(ValueError):
            events.Cursor.parse(bad)

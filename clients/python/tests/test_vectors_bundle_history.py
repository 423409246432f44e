"""proof_bundle_history.json (SPEC.md §11.3): a bundle after a validator-set change, verified by
walking its `validator_history` from the genesis set; tampered and hostile histories refused
with a BundleError (never another exception)."""

import copy
import json
import random

import pytest
from conftest import h, load

from dpx_client import bundle, chain, hashing, proto, state
from dpx_client.keys import Keypair

VEC = "proof_bundle_history.json"


def test_valid_bundle_verifies_through_the_handoff():
    v = load(VEC)
    assert v["valid"] is True
    b = v["bundle"]
    assert len(b["validator_history"]) == 1
    got = bundle.verify_bundle(b, v["genesis"])
    assert got.value == h(b["value"])
    assert got.version == b["version"]
    # the same bundle inside `dpx audit prove` output
    assert bundle.verify_bundle({"kind": "x", "id": "y", "bundle": b}, v["genesis"]).key == got.key
    # the set the walk leads to is not the genesis set: the pre-history check would refuse it
    _, g_set = bundle.genesis_validator_set(v["genesis"])
    vset = chain.ValidatorSet.from_list(b["validators"])
    assert vset.hash(got.chain_id) != g_set.hash(got.chain_id)
    assert vset.hash(got.chain_id) == h(b["header"]["validator_set_hash"])


@pytest.mark.parametrize("i", range(5))
def test_tampered_bundles_refused(i):
    v = load(VEC)
    t = v["tampered"][i]
    assert t["valid"] is False
    with pytest.raises(bundle.BundleError) as e:
        bundle.verify_bundle(t["bundle"], v["genesis"])
    assert str(e.value)  # a reason


def test_every_byte_flip_in_the_history_is_refused():
    v = load(VEC)
    base = v["bundle"]
    flips = 0

    def walk(obj, path):
        if isinstance(obj, dict):
            for k, x in obj.items():
                yield from walk(x, path + (k,))
        elif isinstance(obj, list):
            for i, x in enumerate(obj):
                yield from walk(x, path + (i,))
        elif isinstance(obj, str) and path[-1] != "chain_id" and obj != "null":
            yield path, obj

    for path, text in walk(base["validator_history"], ("validator_history",)):
        raw = bytes.fromhex(text)
        for i in range(0, len(raw), 3):  # every 3rd byte of every field keeps this quick
            b = copy.deepcopy(base)
            o = b
            for p in path[:-1]:
                o = o[p]
            bad = bytearray(raw)
            bad[i] ^= 0x80
            o[path[-1]] = bad.hex()
            with pytest.raises(bundle.BundleError):
                bundle.verify_bundle(b, v["genesis"])
            flips += 1
    assert flips > 300


def _handoff_case(edit):
    v = load(VEC)
    b = copy.deepcopy(v["bundle"])
    edit(b, b["validator_history"][0] if b["validator_history"] else None)
    return b, v["genesis"]


def _value_edit(fn):
    """Replace the handoff's value by fn(decoded ValidatorSet) re-encoded (the proof no longer
    matches, but decoding is checked too)."""
    def edit(b, ho):
        vs = proto.decode("ValidatorSet", h(ho["value"]))
        ho["value"] = fn(vs)
    return edit


HOSTILE = [
    ("history not a list", lambda b, ho: b.update(validator_history={"0": ho}), "validator_history must be a list"),
    ("history a string", lambda b, ho: b.update(validator_history="00"), "validator_history must be a list"),
    ("handoff not an object", lambda b, ho: b.update(validator_history=[[ho]]), "handoff must be an object"),
    ("handoff null", lambda b, ho: b.update(validator_history=[None]), "handoff must be an object"),
    ("handoff missing header", lambda b, ho: ho.pop("header"), "validator_history[0]"),
    ("handoff missing proof", lambda b, ho: ho.pop("proof"), "validator_history[0]"),
    ("handoff empty object", lambda b, ho: b.update(validator_history=[{}]), "validator_history[0]"),
    ("effective height a string", lambda b, ho: ho.update(effective_height="4"), "effective_height"),
    ("effective height a bool", lambda b, ho: ho.update(effective_height=True), "effective_height"),
    ("effective height a float", lambda b, ho: ho.update(effective_height=4.0), "effective_height"),
    ("effective height negative", lambda b, ho: ho.update(effective_height=-1), "effective_height"),
    ("effective height past u64", lambda b, ho: ho.update(effective_height=1 << 64), "effective_height"),
    ("effective height huge", lambda b, ho: ho.update(effective_height=10 ** 40), "effective_height"),
    ("effective height 1", lambda b, ho: ho.update(effective_height=1), "strictly increasing"),
    ("effective height past the header", lambda b, ho: ho.update(effective_height=6), "after the height proved"),
    ("handoff repeated", lambda b, ho: b["validator_history"].append(copy.deepcopy(ho)), "strictly increasing"),
    ("header not an object", lambda b, ho: ho.update(header=[1]), "header must be an object"),
    ("header of another chain", lambda b, ho: ho["header"].update(chain_id="other"), "chain id"),
    ("header height mistyped", lambda b, ho: ho["header"].update(height="x"), "header does not decode"),
    ("header height infinite", lambda b, ho: ho["header"].update(height=float("inf")), "header does not decode"),
    ("header bad hex", lambda b, ho: ho["header"].update(state_root="zz" * 32), "header does not decode"),
    ("header unknown field", lambda b, ho: ho["header"].update(extra=1), "header does not decode"),
    ("header of the new set", lambda b, ho: ho["header"].update(validator_set_hash=b["header"]["validator_set_hash"]),
     "validator_set_hash"),
    ("certificate not hex", lambda b, ho: ho.update(certificate="xyz"), "certificate"),
    ("certificate a number", lambda b, ho: ho.update(certificate=7), "certificate"),
    ("certificate truncated", lambda b, ho: ho.update(certificate=ho["certificate"][:100]), "certificate"),
    ("certificate empty", lambda b, ho: ho.update(certificate=""), "certificate"),
    ("certificate of the proved header", lambda b, ho: ho.update(certificate=b["certificate"]), "certificate"),
    ("value bad hex", lambda b, ho: ho.update(value="0g" + ho["value"][2:]), "value"),
    ("value odd hex", lambda b, ho: ho.update(value=ho["value"][:-1]), "value"),
    ("value a list", lambda b, ho: ho.update(value=[1, 2]), "value"),
    ("value null", lambda b, ho: ho.update(value=None), "value"),
    ("value truncated", lambda b, ho: ho.update(value=ho["value"][:-10]), "validator_history[0]"),
    ("proof a string", lambda b, ho: ho.update(proof="null"), "state proof"),
    ("proof sibling a huge number", lambda b, ho: ho["proof"]["siblings"].append({"leaf": {"key_hash": 10 ** 12, "value_hash": 1}}),
     "state proof"),
    ("proof leaf bad hex", lambda b, ho: ho["proof"]["leaf"].update(key_hash="q" * 64), "state proof"),
    ("proof too many siblings", lambda b, ho: ho["proof"].update(siblings=["null"] * 10000), "state proof"),
    ("proof of absence", lambda b, ho: ho["proof"].update(leaf=None), "state proof"),
    ("new set's power zero", _value_edit(lambda vs: proto.encode("ValidatorSet", {
        "validators": [dict(x, power=0) for x in vs["validators"]]}).hex()), "validator_history[0]"),
    ("new set empty", _value_edit(lambda vs: ""), "validator_history[0]"),
    ("handoffs: 4097", lambda b, ho: b.update(validator_history=[ho] * 4097), "more than 4096"),
    ("handoffs: a million nulls", lambda b, ho: b.update(validator_history=[None] * 1_000_000), "more than 4096"),
]


@pytest.mark.parametrize("what,edit,reason", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_handoffs_refused(what, edit, reason):
    b, g = _handoff_case(edit)
    with pytest.raises(bundle.BundleError) as e:
        bundle.verify_bundle(b, g)
    assert reason in str(e.value), (what, str(e.value))


def test_missing_history_is_empty():
    """Bundles from before any change may omit the field (the genesis set then applies)."""
    for name in ("proof_bundle.json",):
        v = load(name)
        b = copy.deepcopy(v["bundle"])
        b.pop("validator_history", None)
        assert bundle.verify_bundle(b, v["genesis"]).version == v["bundle"]["version"]
        b["validator_history"] = None
        assert bundle.verify_bundle(b, v["genesis"]).version == v["bundle"]["version"]
    v = load("tx_proof_bundle.json")
    b = copy.deepcopy(v["bundle"])
    b.pop("validator_history", None)
    assert bundle.verify_tx_bundle(b, v["genesis"]).receipt is not None


def test_history_on_a_genesis_era_bundle_is_refused():
    """The handoff (effective at 4) grafted onto a bundle proving block 5 of another chain,
    or onto the genesis-era bundle itself, is refused."""
    v = load(VEC)
    old = load("proof_bundle.json")
    b = copy.deepcopy(old["bundle"])
    b["validator_history"] = copy.deepcopy(v["bundle"]["validator_history"])
    with pytest.raises(bundle.BundleError):
        bundle.verify_bundle(b, old["genesis"])


def test_history_json_junk():
    rng = random.Random(0x11_3)
    v = load(VEC)
    text = json.dumps(v["bundle"])
    start = text.index('"validator_history"')
    refused = 0
    for _ in range(300):
        t = list(text)
        for _ in range(rng.randrange(1, 3)):
            t[rng.randrange(start, len(t))] = rng.choice('0123456789abcdef"{}[],:nul ')
        try:
            doc = json.loads("".join(t))
        except ValueError:
            continue
        try:
            bundle.verify_bundle(doc, v["genesis"])
        except bundle.BundleError:
            refused += 1
    assert refused > 30


# ---------------------------------------------------------------- a synthetic chain
#
# No vector has a transaction bundle across a change, so build one with known seeds: genesis
# validators from seeds 0x10..0x13, a fifth (seed 0x20) joining at height E. The transaction is
# in block E - 1 (the last the genesis set validates); its receipt is certified by block E (the
# first of the new set). The history carries the handoff at E, which the block's walk (up to
# E - 1) must not apply and the next header's walk (up to E) must.

CHAIN = "hist-test"
E = 4
ZERO = "00" * 32


def _kp(seed):
    return Keypair.from_seed(bytes([seed]) * 32)


def _set(seeds):
    return chain.ValidatorSet.from_list(
        [{"key": _kp(s).public_key.hex(), "power": 10} for s in seeds], sort=True)


def _header(height, vset, state_root=ZERO, tx_root=ZERO, parent_id=ZERO, prev_receipts=ZERO):
    return {"chain_id": CHAIN, "height": height, "time_ms": 1000 + height,
            "proposer": vset.validators[0][0].hex(), "parent_id": parent_id,
            "parent_certificate_hash": ZERO, "tx_root": tx_root, "state_root": state_root,
            "validator_set_hash": vset.hash(CHAIN).hex(), "prev_receipts_hash": prev_receipts}


def _certify(header, vset, seeds):
    bid = chain.block_id(header)
    by_key = {_kp(s).public_key: _kp(s) for s in seeds}
    digest = chain.vote_digest(CHAIN, chain.PRECOMMIT, header["height"], 0, bid)
    sigs = [{"validator": i, "signature": by_key[k].sign_digest(digest)}
            for i, (k, _) in enumerate(vset.validators)]
    cert = {"height": header["height"], "round": 0, "value_id": bid, "signatures": sigs}
    return proto.encode("Certificate", cert).hex(), bid


def _synthetic(value=None):
    """The bundle and genesis; ``value`` replaces the stored ValidatorSet bytes (the state root,
    the proof and the certificates follow it, so only decoding can refuse it)."""
    old_seeds, new_seeds = [0x10, 0x11, 0x12, 0x13], [0x10, 0x11, 0x12, 0x13, 0x20]
    old, new = _set(old_seeds), _set(new_seeds)
    genesis = {"chain_id": CHAIN, "app": {"validators": [
        {"key": _kp(s).public_key.hex(), "power": 10, "name": f"v{s}"} for s in old_seeds]}}
    # the new set stored at valupdate/‖u64be(E), the only entry of a one-leaf state; stored in
    # reverse key order, since the verifier sorts it
    if value is None:
        value = proto.encode("ValidatorSet", {"validators": [
            {"key": k, "power": p, "name": "n"} for k, p in reversed(new.validators)]})
    vkey = b"valupdate/" + hashing.u64be(E)
    root = state.root_of({vkey: value})
    proof = {"leaf": {"key_hash": hashing.blake3(vkey).hex(), "value_hash": hashing.blake3(value).hex()},
             "siblings": []}
    tx, receipt = b"opaque transaction", b"opaque receipt"
    blk = _header(E - 1, old, state_root=root.hex(), tx_root=chain.tx_leaf(tx).hex())
    blk_cert, blk_id = _certify(blk, old, old_seeds)
    nxt = _header(E, new, parent_id=blk_id.hex(), prev_receipts=chain.receipt_leaf(receipt).hex())
    nxt_cert, _ = _certify(nxt, new, new_seeds)
    handoff = {"effective_height": E, "header": blk, "certificate": blk_cert,
               "value": value.hex(), "proof": proof}
    b = {"chain_id": CHAIN, "tx_hash": hashing.blake3(tx).hex(), "height": E - 1, "index": 0,
         "tx": tx.hex(), "tx_proof": {"index": 0, "leaf_count": 1, "siblings": []},
         "block": {"header": blk, "certificate": blk_cert,
                   "validators": [{"key": k.hex(), "power": p} for k, p in old.validators]},
         "receipt": {"receipt": receipt.hex(), "proof": {"index": 0, "leaf_count": 1, "siblings": []},
                     "next": {"header": nxt, "certificate": nxt_cert,
                              "validators": [{"key": k.hex(), "power": p} for k, p in new.validators]}},
         "validator_history": [handoff]}
    return b, genesis


def test_tx_bundle_across_a_change_each_header_against_its_own_set():
    b, g = _synthetic()
    got = bundle.verify_tx_bundle(b, g)
    assert got.receipt == b"opaque receipt"
    # without the history the next header's set is unknown
    nb = copy.deepcopy(b)
    nb["validator_history"] = []
    with pytest.raises(bundle.BundleError, match="genesis validator set"):
        bundle.verify_tx_bundle(nb, g)
    # the block's validators must stay the outgoing set even though the history goes further
    nb = copy.deepcopy(b)
    nb["block"]["validators"] = nb["receipt"]["next"]["validators"]
    with pytest.raises(bundle.BundleError):
        bundle.verify_tx_bundle(nb, g)
    # a pending bundle (no next header) may not carry a change after its block
    nb = copy.deepcopy(b)
    nb["receipt"] = None
    with pytest.raises(bundle.BundleError, match="after the height proved"):
        bundle.verify_tx_bundle(nb, g)
    nb["validator_history"] = []
    assert bundle.verify_tx_bundle(nb, g).receipt is None


def test_tx_bundle_handoff_certified_by_the_wrong_set_refused():
    b, g = _synthetic()
    # the new set certifying its own handoff: the handoff header names the old set
    new_seeds = [0x10, 0x11, 0x12, 0x13, 0x20]
    ho = b["validator_history"][0]
    ho["certificate"], _ = _certify(ho["header"], _set(new_seeds), new_seeds)
    with pytest.raises(bundle.BundleError, match=r"validator_history\[0\]"):
        bundle.verify_tx_bundle(b, g)


def test_state_bundle_walk_stops_at_its_header():
    """A state-value bundle for the block before the change, with the handoff of that change,
    is refused (the handoff takes effect after the height proved); without it, it verifies."""
    b, g = _synthetic()
    blk = b["block"]
    ho = b["validator_history"][0]
    sb = {"chain_id": CHAIN, "key": (b"valupdate/" + hashing.u64be(E)).hex(), "value": ho["value"],
          "version": E - 2, "proof": ho["proof"], "header": blk["header"],
          "certificate": blk["certificate"], "validators": blk["validators"],
          "validator_history": [ho]}
    with pytest.raises(bundle.BundleError, match="after the height proved"):
        bundle.verify_bundle(sb, g)
    sb["validator_history"] = []
    assert bundle.verify_bundle(sb, g).version == E - 2


def _good_value():
    new = _set([0x10, 0x11, 0x12, 0x13, 0x20])
    return proto.encode("ValidatorSet", {"validators": [
        {"key": k, "power": p, "name": "n"} for k, p in new.validators]})


_V = _good_value()
BAD_VALUES = [
    ("truncated protobuf", _V[:-3], "not a ValidatorSet"),
    ("truncated length", _V[:5], "not a ValidatorSet"),
    ("junk", b"\xff\xff\xff", "not a ValidatorSet"),
    ("unknown field", _V + b"\x10\x01", "not a ValidatorSet"),
    ("non-canonical (zero power written)", _V + bytes.fromhex("0a0410001a00"), "not a ValidatorSet"),
    ("name not UTF-8", proto.encode("ValidatorSet", {"validators": [
        {"key": _kp(0x10).public_key, "power": 10, "name": "x"}]}).replace(b"x", b"\xff"), "not a ValidatorSet"),
    ("empty set", b"", "new validator set"),
    ("zero power", proto.encode("ValidatorSet", {"validators": [
        {"key": _kp(0x10).public_key, "power": 0, "name": "x"}]}), "new validator set"),
    ("short key", proto.encode("ValidatorSet", {"validators": [
        {"key": b"\x01" * 31, "power": 1, "name": "x"}]}), "new validator set"),
    ("invalid key", proto.encode("ValidatorSet", {"validators": [
        {"key": b"\x00" * 32, "power": 1, "name": "x"}]}), "new validator set"),
    ("duplicate key", proto.encode("ValidatorSet", {"validators": [
        {"key": _kp(0x10).public_key, "power": 1}, {"key": _kp(0x10).public_key, "power": 2}]}),
     "new validator set"),
]


@pytest.mark.parametrize("what,value,reason", BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_proved_value_that_is_no_validator_set_refused(what, value, reason):
    """The value is under the certified state root, so only decoding it can refuse it."""
    b, g = _synthetic(value)
    with pytest.raises(bundle.BundleError) as e:
        bundle.verify_tx_bundle(b, g)
    assert "validator_history[0]" in str(e.value) and reason in str(e.value), (what, str(e.value))


def test_names_are_not_part_of_the_set():
    new = _set([0x10, 0x11, 0x12, 0x13, 0x20])
    value = proto.encode("ValidatorSet", {"validators": [
        {"key": k, "power": p, "name": f"renamed-{i}"} for i, (k, p) in enumerate(new.validators)]})
    b, g = _synthetic(value)
    assert bundle.verify_tx_bundle(b, g).receipt is not None

"""Proof bundles (SPEC.md §11): verify a state value (§11.1) or a transaction and its receipt
(§11.2) end to end against a genesis file, without trusting the node that produced the bundle.

value -> leaf -> state root (§8.4) -> header (block id, §7.1) -> certificate (> 2/3 of the
voting power, §7.5) -> validator set (§7.4): the genesis set, or the set the bundle's
``validator_history`` leads to from it (§11.3), each handoff certified by the set it replaces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import chain, hashing, proto, state
from .keys import KeyError_, parse_hex

MAX_BUNDLE_JSON_BYTES = 4 << 20
MAX_HANDOFFS = 4096  # SPEC.md §11.3: a bundle carries at most 4096 handoffs
VALUPDATE_PREFIX = b"valupdate/"


class BundleError(ValueError):
    """A bundle that must be refused; the message says which check failed."""


@dataclass(frozen=True)
class Verified:
    chain_id: str
    key: bytes
    value: bytes | None
    version: int
    block_id: bytes
    header: dict


def genesis_validator_set(genesis: dict) -> tuple[str, chain.ValidatorSet]:
    try:
        chain_id = genesis["chain_id"]
        vals = genesis["app"]["validators"]
    except (KeyError, TypeError):
        raise BundleError("genesis: missing chain_id or app.validators") from None
    if not isinstance(chain_id, str):
        raise BundleError("genesis: chain_id must be a string")
    try:
        return chain_id, chain.ValidatorSet.from_list(vals, sort=True)
    except (chain.ChainError, KeyError, TypeError, ValueError) as e:
        raise BundleError(f"genesis validators: {e}") from None


def extract_bundle(doc: dict) -> dict:
    """Accepts a bare bundle, `dpx audit prove` output ({"bundle": ...}) or an RPC answer
    of `?prove=true` ({"proof": bundle})."""
    if not isinstance(doc, dict):
        raise BundleError("bundle must be a JSON object")
    if "bundle" in doc:
        doc = doc["bundle"]
    elif "proof" in doc and isinstance(doc.get("proof"), dict) and "certificate" in doc["proof"]:
        doc = doc["proof"]
    if not isinstance(doc, dict):
        raise BundleError("bundle must be a JSON object")
    return doc


def _checked(verify, doc: dict, genesis: dict):
    """Run ``verify`` on the bundle in ``doc``; a malformed bundle becomes a BundleError."""
    b = extract_bundle(doc)
    g_chain, g_set = genesis_validator_set(genesis)
    try:
        return verify(b, g_chain, g_set)
    except (KeyError, TypeError) as e:
        raise BundleError(f"malformed bundle: missing or mistyped field {e}") from None
    except (KeyError_, ValueError, OverflowError) as e:
        if isinstance(e, BundleError):
            raise
        raise BundleError(f"malformed bundle: {e}") from None


def verify_bundle(doc: dict, genesis: dict) -> Verified:
    """Verify a proof bundle; raises BundleError naming the first failed check."""
    return _checked(_verify, doc, genesis)


def _decode_header(hdr_json, g_chain: str, what: str = "header") -> tuple[dict, bytes]:
    """A header in JSON view of the genesis chain: the decoded header and its block id."""
    if not isinstance(hdr_json, dict):
        raise BundleError(f"{what} must be an object")
    if hdr_json.get("chain_id") != g_chain:
        raise BundleError(f"{what} chain id is not the genesis chain")
    try:
        header = proto.from_json("Header", hdr_json)
        hbytes = proto.encode("Header", header)
        header = proto.decode("Header", hbytes)  # sizes and key validity of every field
    except (ValueError, TypeError, OverflowError, proto.DecodeError) as e:
        raise BundleError(f"{what} does not decode: {e}") from None
    if header["chain_id"] != g_chain:
        raise BundleError(f"{what} chain id is not the genesis chain")
    return header, hashing.H(hashing.HEADER, g_chain, hbytes)


def _check_certificate(cert_hex, header: dict, bid: bytes, vset: chain.ValidatorSet, g_chain: str,
                       where: str = "") -> None:
    """SPEC.md §7.5: the certificate is for ``header``'s height and block id and valid against
    ``vset``. ``where`` prefixes the reason (a handoff of the history)."""
    try:
        cert = chain.decode_certificate(parse_hex(cert_hex, None, f"{where}certificate"))
        if cert["height"] != header["height"]:
            raise BundleError(f"{where}certificate is for height {cert['height']}, header is {header['height']}")
        if cert["value_id"] != bid:
            raise BundleError(f"{where}certificate is for another block (value_id is not the header's block id)")
        chain.verify_certificate(cert, vset, g_chain)
    except chain.ChainError as e:
        raise BundleError(f"{where}{e}") from None


@dataclass(frozen=True)
class _History:
    """The validator sets a bundle's ``validator_history`` leads to (SPEC.md §11.3), walked up to
    height ``top``: ``sets[i] = (e, S)`` with ``S`` in force from height ``e``; ``sets[0]`` is the
    genesis set from height 1."""
    top: int
    sets: tuple

    def at(self, height: int) -> tuple[int, chain.ValidatorSet]:
        """(effective height, set) of the set in force at ``height`` (1 <= height <= top)."""
        if not isinstance(height, int) or height < 1 or height > self.top:
            raise BundleError(f"header height {height} is outside the validator history walk (1..{self.top})")
        found = self.sets[0]
        for e, s in self.sets:
            if e > height:
                break
            found = (e, s)
        return found


def _handoff(i: int, ho, last: int, top: int, g_chain: str,
             cur: chain.ValidatorSet) -> tuple[int, chain.ValidatorSet]:
    """Steps 1-5 of SPEC.md §11.3 for the handoff ``ho``: (its effective height, the new set)."""
    if not isinstance(ho, dict):
        raise BundleError(f"validator_history[{i}]: a handoff must be an object")
    e = ho["effective_height"]
    if not isinstance(e, int) or isinstance(e, bool) or not 0 <= e < 1 << 64:
        raise BundleError(f"validator_history[{i}]: effective_height must be a 64-bit unsigned integer")
    where = f"validator_history[{i}] (effective height {e})"
    # 1. strictly increasing, none after the height proved
    if e <= last:
        raise BundleError(f"{where}: effective heights must be strictly increasing and above {last}")
    if e > top:
        raise BundleError(f"{where}: takes effect after the height proved ({top})")
    # 2. the header of block e - 1, validated by the outgoing set
    header, bid = _decode_header(ho["header"], g_chain, f"{where}: header")
    if header["height"] != e - 1:
        raise BundleError(f"{where}: header is of block {header['height']}, not {e - 1}")
    if header["validator_set_hash"] != cur.hash(g_chain):
        raise BundleError(f"{where}: header validator_set_hash is not the hash of the set in force")
    # 3. its certificate, against the outgoing set
    _check_certificate(ho["certificate"], header, bid, cur, g_chain, f"{where}: ")
    # 4. the new set under the header's state root
    value = parse_hex(ho["value"], None, f"{where}: value")
    try:
        proof = state.proof_from_json(ho["proof"])
        state.verify_proof(header["state_root"], VALUPDATE_PREFIX + hashing.u64be(e), value, proof)
    except state.ProofError as err:
        raise BundleError(f"{where}: state proof of valupdate/{e}: {err}") from None
    # 5. the new set, sorted by key
    try:
        decoded = proto.decode("ValidatorSet", value)
    except proto.DecodeError as err:
        raise BundleError(f"{where}: value is not a ValidatorSet: {err}") from None
    try:
        new = chain.ValidatorSet.from_list(decoded["validators"], sort=True)
    except chain.ChainError as err:
        raise BundleError(f"{where}: new validator set: {err}") from None
    return e, new


def _walk_history(b: dict, top: int, g_chain: str, g_set: chain.ValidatorSet) -> _History:
    """Walk the bundle's ``validator_history`` (absent: empty) from the genesis set up to
    height ``top`` (SPEC.md §11.3)."""
    hist = b.get("validator_history")
    if hist is None:
        hist = []
    if not isinstance(hist, list):
        raise BundleError("validator_history must be a list")
    if len(hist) > MAX_HANDOFFS:
        raise BundleError(f"validator_history has {len(hist)} handoffs, more than {MAX_HANDOFFS}")
    sets = [(1, g_set)]
    last, cur = 1, g_set
    for i, ho in enumerate(hist):
        try:
            last, cur = _handoff(i, ho, last, top, g_chain, cur)
        except BundleError:
            raise
        except (KeyError, TypeError) as err:
            raise BundleError(f"validator_history[{i}]: missing or mistyped field {err}") from None
        except (KeyError_, ValueError, OverflowError) as err:
            raise BundleError(f"validator_history[{i}]: {err}") from None
        sets.append((last, cur))
    return _History(top, tuple(sets))


def _verify_certified(c: dict, g_chain: str, hist: _History) -> tuple[dict, bytes]:
    """A header, its certificate and validators (steps 2-3 of SPEC.md §11.1): the decoded
    header and its block id. ``hist`` gives the set in force at the header's height."""
    header, bid = _decode_header(c["header"], g_chain)

    # validator set: the one the history leads to at this height, named by the header
    try:
        vset = chain.ValidatorSet.from_list(c["validators"])
    except chain.ChainError as e:
        raise BundleError(f"bundle validators: {e}") from None
    vhash = vset.hash(g_chain)
    e, expected = hist.at(header["height"])
    if vhash != expected.hash(g_chain):
        if len(hist.sets) == 1:
            raise BundleError("bundle validator set is not the genesis validator set (hash differs)")
        if e == 1:
            raise BundleError(f"bundle validator set is not the genesis validator set in force at "
                              f"height {header['height']} (hash differs)")
        raise BundleError(f"bundle validator set is not the set the validator history leads to at "
                          f"height {header['height']} (in force from {e}; hash differs)")
    if vhash != header["validator_set_hash"]:
        raise BundleError("header validator_set_hash is not the hash of the bundle's validators")

    # certificate
    _check_certificate(c["certificate"], header, bid, vset, g_chain)
    return header, bid


def _verify(b: dict, g_chain: str, g_set: chain.ValidatorSet) -> Verified:
    # 1. chain and height
    if b["chain_id"] != g_chain:
        raise BundleError(f"bundle chain id {b['chain_id']!r} is not the genesis chain {g_chain!r}")
    version = b["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise BundleError("version must be a non-negative integer")
    # 2. the validator set in force at the header's height (version + 1), from the history
    hist = _walk_history(b, version + 1, g_chain, g_set)
    hdr = b["header"]
    if isinstance(hdr, dict) and hdr.get("height") != version + 1:
        raise BundleError(f"header height {hdr.get('height')!r} is not version + 1 = {version + 1}")
    header, bid = _verify_certified(b, g_chain, hist)
    if header["height"] != version + 1:
        raise BundleError(f"header height {header['height']} is not version + 1 = {version + 1}")

    # 4. state proof
    key = parse_hex(b["key"], None, "key")
    if len(key) > 1024:
        raise BundleError("state key longer than 1024 bytes")
    value = None if b["value"] is None else parse_hex(b["value"], None, "value")
    try:
        proof = state.proof_from_json(b["proof"])
        state.verify_proof(header["state_root"], key, value, proof)
    except state.ProofError as e:
        raise BundleError(f"state proof: {e}") from None
    return Verified(g_chain, key, value, version, bid, header)


@dataclass(frozen=True)
class TxVerified:
    chain_id: str
    tx_hash: bytes
    tx: bytes
    height: int
    index: int
    block_id: bytes
    receipt: bytes | None  # None when the bundle proves the inclusion only
    receipt_pending: str | None


def is_tx_bundle(doc: dict) -> bool:
    """`dpx audit prove-tx` output ({"kind": "tx", ...}) or a bare transaction bundle."""
    if not isinstance(doc, dict):
        return False
    return doc.get("kind") == "tx" or "tx_proof" in doc


def _merkle_proof(p, what: str) -> tuple[int, int, list[bytes]]:
    if not isinstance(p, dict):
        raise BundleError(f"{what}: must be an object")
    index, count, sibs = p["index"], p["leaf_count"], p["siblings"]
    for name, n in (("index", index), ("leaf_count", count)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise BundleError(f"{what}: {name} must be a non-negative integer")
    if not isinstance(sibs, list) or len(sibs) > 64:
        raise BundleError(f"{what}: siblings must be a list of at most 64 hashes")
    return index, count, [parse_hex(x, 32, f"{what} sibling") for x in sibs]


def verify_tx_bundle(doc: dict, genesis: dict) -> TxVerified:
    """Verify a transaction bundle (SPEC.md §11.2); raises BundleError naming the first failed
    check."""
    return _checked(_verify_tx, doc, genesis)


def _verify_tx(b: dict, g_chain: str, g_set: chain.ValidatorSet) -> TxVerified:
    # 1. chain, hash, height, index
    if b["chain_id"] != g_chain:
        raise BundleError(f"bundle chain id {b['chain_id']!r} is not the genesis chain {g_chain!r}")
    tx = parse_hex(b["tx"], None, "tx")
    tx_hash = parse_hex(b["tx_hash"], 32, "tx_hash")
    if hashing.blake3(tx) != tx_hash:
        raise BundleError("the transaction bytes do not hash to tx_hash")
    height, index = b["height"], b["index"]
    for name, n in (("height", height), ("index", index)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise BundleError(f"{name} must be a non-negative integer")
    t_index, t_count, t_sibs = _merkle_proof(b["tx_proof"], "tx_proof")
    if t_index != index:
        raise BundleError("tx_proof is for another index")
    r = b["receipt"]
    if r is not None and not isinstance(r, dict):
        raise BundleError("receipt must be an object or null")
    # the history runs up to the last header carried: block h + 1 with a receipt, else block h
    hist = _walk_history(b, height + 1 if r is not None else height, g_chain, g_set)
    # 2. the block's certified header
    block = b["block"]
    if not isinstance(block, dict) or not isinstance(block.get("header"), dict):
        raise BundleError("block must hold a header")
    if block["header"].get("height") != height:
        raise BundleError(f"the header is of block {block['header'].get('height')!r}, not {height}")
    header, bid = _verify_certified(block, g_chain, hist)
    if header["height"] != height:
        raise BundleError(f"the header is of block {header['height']}, not {height}")
    # 3. the transaction under tx_root
    if not chain.verify_merkle_proof(header["tx_root"], chain.tx_leaf(tx), t_index, t_count, t_sibs):
        raise BundleError("the transaction's Merkle proof does not lead to the header's tx_root")
    if r is None:
        pending = b.get("receipt_pending")
        return TxVerified(g_chain, tx_hash, tx, height, index, bid, None,
                          pending if isinstance(pending, str) else None)
    # 4. the receipt under the next header's prev_receipts_hash
    next_json = r["next"]
    if not isinstance(next_json, dict) or not isinstance(next_json.get("header"), dict):
        raise BundleError("receipt.next must hold a header")
    r_index, r_count, r_sibs = _merkle_proof(r["proof"], "receipt proof")
    if r_index != index or r_count != t_count:
        raise BundleError("the receipt proof is for another index or block size")
    if next_json["header"].get("height") != height + 1:
        raise BundleError(f"the receipt's header is of block {next_json['header'].get('height')!r}, "
                          f"not {height + 1}")
    nheader, _ = _verify_certified(next_json, g_chain, hist)
    if nheader["height"] != height + 1:
        raise BundleError(f"the receipt's header is of block {nheader['height']}, not {height + 1}")
    if nheader["parent_id"] != bid:
        raise BundleError("the next header's parent_id is not the transaction's block")
    receipt = parse_hex(r["receipt"], None, "receipt")
    if not chain.verify_merkle_proof(nheader["prev_receipts_hash"], chain.receipt_leaf(receipt),
                                     r_index, r_count, r_sibs):
        raise BundleError("the receipt's Merkle proof does not lead to the next header's prev_receipts_hash")
    return TxVerified(g_chain, tx_hash, tx, height, index, bid, receipt, None)


def load_files(bundle_path: str, genesis_path: str) -> tuple[dict, dict]:
    """The bundle document and the genesis, read with a size bound."""
    with open(bundle_path, "rb") as f:
        raw = f.read(MAX_BUNDLE_JSON_BYTES + 1)
    if len(raw) > MAX_BUNDLE_JSON_BYTES:
        raise BundleError("bundle file too large")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise BundleError(f"bundle is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BundleError("bundle must be a JSON object")
    with open(genesis_path) as f:
        try:
            genesis = json.load(f)
        except ValueError as e:
            raise BundleError(f"genesis is not JSON: {e}") from None
    return doc, genesis


def verify_bundle_file(bundle_path: str, genesis_path: str) -> Verified:
    doc, genesis = load_files(bundle_path, genesis_path)
    return verify_bundle(doc, genesis)

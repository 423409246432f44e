"""Proof bundles (SPEC.md §11): verify a state value (§11.1) or a transaction and its receipt
(§11.2) end to end against a genesis file, without trusting the node that produced the bundle.

value -> leaf -> state root (§8.4) -> header (block id, §7.1) -> certificate (> 2/3 of the
voting power, §7.5) -> validator set (hash of the genesis set, §7.4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import chain, hashing, proto, state
from .keys import KeyError_, parse_hex

MAX_BUNDLE_JSON_BYTES = 4 << 20


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
    except (KeyError_, ValueError) as e:
        if isinstance(e, BundleError):
            raise
        raise BundleError(f"malformed bundle: {e}") from None


def verify_bundle(doc: dict, genesis: dict) -> Verified:
    """Verify a proof bundle; raises BundleError naming the first failed check."""
    return _checked(_verify, doc, genesis)


def _verify_certified(c: dict, g_chain: str, g_set: chain.ValidatorSet) -> tuple[dict, bytes]:
    """A header, its certificate and validators (steps 2-3 of SPEC.md §11.1): the decoded
    header and its block id."""
    hdr_json = c["header"]
    if not isinstance(hdr_json, dict):
        raise BundleError("header must be an object")
    if hdr_json.get("chain_id") != g_chain:
        raise BundleError("header chain id is not the genesis chain")
    try:
        header = proto.from_json("Header", hdr_json)
        hbytes = proto.encode("Header", header)
        header = proto.decode("Header", hbytes)  # sizes and key validity of every field
    except (ValueError, proto.DecodeError) as e:
        raise BundleError(f"header does not decode: {e}") from None
    bid = hashing.H(hashing.HEADER, g_chain, hbytes)

    # validator set
    try:
        vset = chain.ValidatorSet.from_list(c["validators"])
    except chain.ChainError as e:
        raise BundleError(f"bundle validators: {e}") from None
    vhash = vset.hash(g_chain)
    if vhash != g_set.hash(g_chain):
        raise BundleError("bundle validator set is not the genesis validator set (hash differs)")
    if vhash != header["validator_set_hash"]:
        raise BundleError("header validator_set_hash is not the hash of the bundle's validators")

    # certificate
    cert = chain.decode_certificate(parse_hex(c["certificate"], None, "certificate"))
    if cert["height"] != header["height"]:
        raise BundleError(f"certificate is for height {cert['height']}, header is {header['height']}")
    if cert["value_id"] != bid:
        raise BundleError("certificate is for another block (value_id is not the header's block id)")
    try:
        chain.verify_certificate(cert, vset, g_chain)
    except chain.ChainError as e:
        raise BundleError(str(e)) from None
    return header, bid


def _verify(b: dict, g_chain: str, g_set: chain.ValidatorSet) -> Verified:
    # 1. chain and height
    if b["chain_id"] != g_chain:
        raise BundleError(f"bundle chain id {b['chain_id']!r} is not the genesis chain {g_chain!r}")
    version = b["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise BundleError("version must be a non-negative integer")
    header, bid = _verify_certified(b, g_chain, g_set)
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
    # 2. the block's certified header
    header, bid = _verify_certified(b["block"], g_chain, g_set)
    if header["height"] != height:
        raise BundleError(f"the header is of block {header['height']}, not {height}")
    # 3. the transaction under tx_root
    if not chain.verify_merkle_proof(header["tx_root"], chain.tx_leaf(tx), t_index, t_count, t_sibs):
        raise BundleError("the transaction's Merkle proof does not lead to the header's tx_root")
    r = b["receipt"]
    if r is None:
        pending = b.get("receipt_pending")
        return TxVerified(g_chain, tx_hash, tx, height, index, bid, None,
                          pending if isinstance(pending, str) else None)
    if not isinstance(r, dict):
        raise BundleError("receipt must be an object or null")
    # 4. the receipt under the next header's prev_receipts_hash
    next_json = r["next"]
    if not isinstance(next_json, dict) or not isinstance(next_json.get("header"), dict):
        raise BundleError("receipt.next must hold a header")
    r_index, r_count, r_sibs = _merkle_proof(r["proof"], "receipt proof")
    if r_index != index or r_count != t_count:
        raise BundleError("the receipt proof is for another index or block size")
    nheader, _ = _verify_certified(next_json, g_chain, g_set)
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

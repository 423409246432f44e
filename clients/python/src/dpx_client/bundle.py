"""Proof bundles (SPEC.md §11): verify a state value end to end against a genesis file,
without trusting the node that produced the bundle.

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


def verify_bundle(doc: dict, genesis: dict) -> Verified:
    """Verify a proof bundle; raises BundleError naming the first failed check."""
    b = extract_bundle(doc)
    g_chain, g_set = genesis_validator_set(genesis)
    try:
        return _verify(b, g_chain, g_set)
    except (KeyError, TypeError) as e:
        raise BundleError(f"malformed bundle: missing or mistyped field {e}") from None
    except (KeyError_, ValueError) as e:
        if isinstance(e, BundleError):
            raise
        raise BundleError(f"malformed bundle: {e}") from None


def _verify(b: dict, g_chain: str, g_set: chain.ValidatorSet) -> Verified:
    # 1. chain and height
    if b["chain_id"] != g_chain:
        raise BundleError(f"bundle chain id {b['chain_id']!r} is not the genesis chain {g_chain!r}")
    hdr_json = b["header"]
    if not isinstance(hdr_json, dict):
        raise BundleError("header must be an object")
    if hdr_json.get("chain_id") != g_chain:
        raise BundleError("header chain id is not the genesis chain")
    version = b["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise BundleError("version must be a non-negative integer")
    try:
        header = proto.from_json("Header", hdr_json)
        hbytes = proto.encode("Header", header)
        header = proto.decode("Header", hbytes)  # sizes and key validity of every field
    except (ValueError, proto.DecodeError) as e:
        raise BundleError(f"header does not decode: {e}") from None
    if header["height"] != version + 1:
        raise BundleError(f"header height {header['height']} is not version + 1 = {version + 1}")
    bid = hashing.H(hashing.HEADER, g_chain, hbytes)

    # 2. validator set
    try:
        vset = chain.ValidatorSet.from_list(b["validators"])
    except chain.ChainError as e:
        raise BundleError(f"bundle validators: {e}") from None
    vhash = vset.hash(g_chain)
    if vhash != g_set.hash(g_chain):
        raise BundleError("bundle validator set is not the genesis validator set (hash differs)")
    if vhash != header["validator_set_hash"]:
        raise BundleError("header validator_set_hash is not the hash of the bundle's validators")

    # 3. certificate
    cert = chain.decode_certificate(parse_hex(b["certificate"], None, "certificate"))
    if cert["height"] != header["height"]:
        raise BundleError(f"certificate is for height {cert['height']}, header is {header['height']}")
    if cert["value_id"] != bid:
        raise BundleError("certificate is for another block (value_id is not the header's block id)")
    try:
        chain.verify_certificate(cert, vset, g_chain)
    except chain.ChainError as e:
        raise BundleError(str(e)) from None

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


def verify_bundle_file(bundle_path: str, genesis_path: str) -> Verified:
    with open(bundle_path, "rb") as f:
        raw = f.read(MAX_BUNDLE_JSON_BYTES + 1)
    if len(raw) > MAX_BUNDLE_JSON_BYTES:
        raise BundleError("bundle file too large")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise BundleError(f"bundle is not JSON: {e}") from None
    with open(genesis_path) as f:
        try:
            genesis = json.load(f)
        except ValueError as e:
            raise BundleError(f"genesis is not JSON: {e}") from None
    return verify_bundle(doc, genesis)

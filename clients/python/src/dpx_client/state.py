"""State (SPEC.md §8): state keys, the state tree's root and state proofs."""

from __future__ import annotations

from . import hashing, proto, schema  # noqa: F401

LEAF_PREFIX = b"JMT::LeafNode"
INTERNAL_PREFIX = b"JMT::IntrnalNode"
PLACEHOLDER = b"SPARSE_MERKLE_PLACEHOLDER_HASH__"
MAX_SIBLINGS = 256

# RPC kind -> (state key prefix, value message)
KINDS = {
    "participants": (b"participant/", "Participant"),
    "accounts": (b"nonce/", None),
    "products": (b"product/", "Product"),
    "demands": (b"demand/", "Demand"),
    "orders": (b"order/", "Order"),
    "grants": (b"grant/", "GrantRecord"),
    "usage": (b"usage/", "UsageReceipt"),
    "subjects": (b"subject/", "Subject"),
    "proposals": (b"proposal/", "Proposal"),
    "policies": (b"policyv/", "PolicySetRecord"),
    "balances": (b"account/", "Account"),
}
# GET /v1/state/money/{treasury|supply}
MONEY = {"treasury": (b"money/treasury", "Treasury"), "supply": (b"money/supply", "MoneySupply")}


class ProofError(ValueError):
    pass


def state_key(kind: str, ident) -> bytes:
    """The state key behind ``GET /v1/state/{kind}/{id}`` (§8.1)."""
    if kind == "money":
        return MONEY[ident][0]
    prefix, _msg = KINDS[kind]
    if kind == "policies":
        return prefix + hashing.u64be(int(ident))
    raw = bytes.fromhex(ident) if isinstance(ident, str) else bytes(ident)
    if len(raw) != 32:
        raise ValueError("ids and keys are 32 bytes")
    return prefix + raw


def decode_value(key: bytes, value: bytes):
    """Decode a state value by its key's prefix (None for raw values)."""
    for k, msg in MONEY.values():
        if key == k:
            return proto.decode(msg, value, strict=False)
    for prefix, msg in KINDS.values():
        if key.startswith(prefix) and msg:
            return proto.decode(msg, value, strict=False)
    return None


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    return hashing.blake3(LEAF_PREFIX + key_hash + value_hash)


def internal_hash(left: bytes, right: bytes) -> bytes:
    return hashing.blake3(INTERNAL_PREFIX + left + right)


def bit(h: bytes, i: int) -> int:
    """Bit ``i`` of a 256-bit path, most significant bit of byte 0 first."""
    return (h[i // 8] >> (7 - i % 8)) & 1


def _subtree(leaves: list, depth: int) -> bytes:
    if not leaves:
        return PLACEHOLDER
    if len(leaves) == 1:
        return leaves[0][1]
    left = [x for x in leaves if bit(x[0], depth) == 0]
    right = [x for x in leaves if bit(x[0], depth) == 1]
    return internal_hash(_subtree(left, depth + 1), _subtree(right, depth + 1))


def root_of(entries: dict) -> bytes:
    """The root of a state {key bytes: value bytes} (§8.2)."""
    leaves = []
    for k, v in entries.items():
        kh = hashing.blake3(k)
        leaves.append((kh, leaf_hash(kh, hashing.blake3(v))))
    return _subtree(leaves, 0)


def _h32(x, what: str) -> bytes:
    if isinstance(x, str):
        try:
            raw = bytes.fromhex(x)
        except ValueError:
            raise ProofError(f"{what}: not hex") from None
    elif isinstance(x, (bytes, bytearray)):
        raw = bytes(x)
    else:  # bytes(n) of a hostile JSON number would allocate n bytes
        raise ProofError(f"{what}: expected hex")
    if len(raw) != 32:
        raise ProofError(f"{what}: expected 32 bytes")
    return raw


def proof_from_json(obj) -> dict:
    """The JSON form of §8.3 -> {"leaf": (kh, vh) | None, "siblings": [hash, ...]}."""
    if not isinstance(obj, dict):
        raise ProofError("proof must be an object")
    leaf = obj.get("leaf")
    if leaf is not None:
        if not isinstance(leaf, dict):
            raise ProofError("proof leaf must be an object or null")
        leaf = (_h32(leaf.get("key_hash"), "leaf key_hash"), _h32(leaf.get("value_hash"), "leaf value_hash"))
    sibs = obj.get("siblings")
    if not isinstance(sibs, list):
        raise ProofError("proof siblings must be a list")
    if len(sibs) > MAX_SIBLINGS:
        raise ProofError(f"proof has more than {MAX_SIBLINGS} siblings")
    hashes = []
    for s in sibs:
        if s == "null":
            hashes.append(PLACEHOLDER)
        elif isinstance(s, dict) and set(s) == {"internal"} and isinstance(s["internal"], dict):
            i = s["internal"]
            hashes.append(internal_hash(_h32(i.get("left"), "internal left"), _h32(i.get("right"), "internal right")))
        elif isinstance(s, dict) and set(s) == {"leaf"} and isinstance(s["leaf"], dict):
            lf = s["leaf"]
            hashes.append(leaf_hash(_h32(lf.get("key_hash"), "sibling key_hash"),
                                    _h32(lf.get("value_hash"), "sibling value_hash")))
        else:
            raise ProofError(f"unknown proof sibling {s!r:.80}")
    return {"leaf": leaf, "siblings": hashes}


def proof_from_protobuf(raw: bytes) -> dict:
    try:
        p = proto.decode("StateProof", raw, strict=False)
    except proto.DecodeError as e:
        raise ProofError(f"proof does not decode: {e}") from None
    if len(p["siblings"]) > MAX_SIBLINGS:
        raise ProofError(f"proof has more than {MAX_SIBLINGS} siblings")
    leaf = None
    if p["leaf"] is not None:
        leaf = (_h32(p["leaf"]["key_hash"], "leaf key_hash"), _h32(p["leaf"]["value_hash"], "leaf value_hash"))
    hashes = []
    for s in p["siblings"]:
        if s["internal"] is not None:
            hashes.append(internal_hash(_h32(s["internal"]["left"], "left"), _h32(s["internal"]["right"], "right")))
        elif s["leaf"] is not None:
            hashes.append(leaf_hash(_h32(s["leaf"]["key_hash"], "kh"), _h32(s["leaf"]["value_hash"], "vh")))
        elif s["null"] is not None:
            hashes.append(PLACEHOLDER)
        else:
            raise ProofError("proof sibling with no node")
    return {"leaf": leaf, "siblings": hashes}


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: dict) -> None:
    """SPEC.md §8.4. ``proof`` from ``proof_from_json``/``proof_from_protobuf``. Raises ProofError."""
    kh = hashing.blake3(key)
    n = len(proof["siblings"])
    if n > MAX_SIBLINGS:
        raise ProofError(f"proof has more than {MAX_SIBLINGS} siblings")
    leaf = proof["leaf"]
    if value is not None:
        if leaf is None:
            raise ProofError("a value is claimed but the proof has no leaf")
        if leaf[0] != kh:
            raise ProofError("the proof's leaf is for another key")
        if leaf[1] != hashing.blake3(value):
            raise ProofError("the value does not match the proof's leaf (value hash differs)")
    elif leaf is not None:
        if leaf[0] == kh:
            raise ProofError("absence is claimed but the proof has the key's own leaf")
        if any(bit(leaf[0], i) != bit(kh, i) for i in range(n)):
            raise ProofError("exclusion proof: the other leaf does not share the key's path")
    h = leaf_hash(*leaf) if leaf is not None else PLACEHOLDER
    for i, s in enumerate(proof["siblings"]):
        h = internal_hash(s, h) if bit(kh, n - 1 - i) else internal_hash(h, s)
    if h != root:
        raise ProofError("the proof does not lead to the state root")

"""Blocks and consensus (SPEC.md §7): block ids, transaction/receipt trees, vote and proposal
sign bytes, validator sets and commit certificates."""

from __future__ import annotations

from dataclasses import dataclass

from . import hashing, proto, schema  # noqa: F401
from .keys import is_valid_public_key, verify_digest

PREVOTE, PRECOMMIT = 1, 2
MAX_VALIDATORS = 1024
MAX_TOTAL_POWER = 1 << 60
MAX_CERT_SIGNATURES = 1024


class ChainError(ValueError):
    pass


# ---------------------------------------------------------------- headers (§7.1)


def header_bytes(header: dict) -> bytes:
    """``header`` in JSON view (hex strings) or proto dict form."""
    h = proto.from_json("Header", header) if isinstance(header.get("proposer"), str) else header
    return proto.encode("Header", h)


def block_id(header: dict) -> bytes:
    chain_id = header["chain_id"]
    return hashing.H(hashing.HEADER, chain_id, header_bytes(header))


# ---------------------------------------------------------------- trees (§7.2)


def tx_leaf(item: bytes) -> bytes:
    return hashing.H(hashing.MERKLE_LEAF, "", item)


def receipt_leaf(item: bytes) -> bytes:
    return hashing.H(hashing.RECEIPTS, "", item)


def node(left: bytes, right: bytes) -> bytes:
    return hashing.H(hashing.MERKLE_NODE, "", left, right)


def merkle_root(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashing.ZERO32
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def tx_root(txs: list[bytes]) -> bytes:
    return merkle_root([tx_leaf(t) for t in txs])


def receipts_root(receipts: list[bytes]) -> bytes:
    return merkle_root([receipt_leaf(r) for r in receipts])


def verify_merkle_proof(root: bytes, leaf: bytes, index: int, leaf_count: int, siblings: list[bytes]) -> bool:
    """RFC 9162 §2.1.3.2 with dpx's node hash."""
    if index >= leaf_count or len(siblings) > 64:
        return False
    fn, sn, r = index, leaf_count - 1, leaf
    for p in siblings:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------- votes and proposals (§7.3)


def vote_sign_bytes(kind: int, height: int, round_: int, value_id: bytes | None) -> bytes:
    out = bytes([kind]) + hashing.u64le(height) + hashing.u32le(round_)
    return out + (b"\x00" if not value_id else b"\x01" + value_id)


def proposal_sign_bytes(height: int, round_: int, value_id: bytes, pol_round: int | None) -> bytes:
    pol = b"\x00" if pol_round is None else b"\x01" + hashing.u32le(pol_round)
    return hashing.u64le(height) + hashing.u32le(round_) + value_id + pol


def vote_digest(chain_id: str, kind: int, height: int, round_: int, value_id: bytes | None) -> bytes:
    return hashing.H(hashing.VOTE, chain_id, vote_sign_bytes(kind, height, round_, value_id))


# ---------------------------------------------------------------- validator sets (§7.4)


@dataclass(frozen=True)
class ValidatorSet:
    validators: tuple  # ((key bytes, power), ...) in index order

    @classmethod
    def from_list(cls, items, sort: bool = False) -> "ValidatorSet":
        vals = []
        if not isinstance(items, (list, tuple)):
            raise ChainError("validators must be a list")
        if len(items) > MAX_VALIDATORS:
            raise ChainError(f"a validator set has 1-{MAX_VALIDATORS} validators, got {len(items)}")
        for v in items:
            if not isinstance(v, dict):
                raise ChainError("a validator must be an object")
            key = v.get("key")
            if isinstance(key, str):
                try:
                    key = bytes.fromhex(key)
                except ValueError:
                    raise ChainError("validator key is not hex") from None
            elif isinstance(key, (bytes, bytearray)):
                key = bytes(key)
            else:  # bytes(n) of a hostile JSON number would allocate n bytes
                raise ChainError("validator key must be hex")
            power = v["power"]
            if not isinstance(power, int) or isinstance(power, bool) or power <= 0:
                raise ChainError(f"validator power must be a positive integer, got {power!r}")
            if not is_valid_public_key(key):
                raise ChainError(f"validator key {key.hex()} is not a valid public key")
            vals.append((key, power))
        if not 1 <= len(vals) <= MAX_VALIDATORS:
            raise ChainError(f"a validator set has 1-{MAX_VALIDATORS} validators, got {len(vals)}")
        if sort:
            vals.sort(key=lambda kv: kv[0])
        keys = [k for k, _ in vals]
        if len(set(keys)) != len(keys):
            raise ChainError("duplicate validator key")
        if sum(p for _, p in vals) > MAX_TOTAL_POWER:
            raise ChainError("total voting power above 2^60")
        return cls(tuple(vals))

    @property
    def total_power(self) -> int:
        return sum(p for _, p in self.validators)

    @property
    def quorum(self) -> int:
        return (2 * self.total_power) // 3 + 1

    def hash(self, chain_id: str) -> bytes:
        parts = [hashing.u64le(len(self.validators))]
        for key, power in self.validators:
            parts += [key, hashing.u64le(power)]
        return hashing.H(hashing.VALIDATOR_SET, chain_id, *parts)


# ---------------------------------------------------------------- certificates (§7.5)


def decode_certificate(raw: bytes) -> dict:
    try:
        cert = proto.decode("Certificate", raw)
    except proto.DecodeError as e:
        raise ChainError(f"certificate does not decode: {e}") from None
    if len(cert["signatures"]) > MAX_CERT_SIGNATURES:
        raise ChainError("certificate has too many signatures")
    return cert


def verify_certificate(cert: dict, vset: ValidatorSet, chain_id: str) -> None:
    """Raises ChainError saying why the certificate is not valid against ``vset``."""
    prev = -1
    power = 0
    digest = vote_digest(chain_id, PRECOMMIT, cert["height"], cert["round"], cert["value_id"])
    for s in cert["signatures"]:
        i = s["validator"]
        if i <= prev:
            raise ChainError(f"certificate signer indices not strictly increasing at {i}")
        prev = i
        if i >= len(vset.validators):
            raise ChainError(f"certificate signer index {i} is not in the validator set")
        key, p = vset.validators[i]
        if not verify_digest(key, digest, s["signature"]):
            raise ChainError(f"certificate signature of validator {i} does not verify")
        power += p
    if power < vset.quorum:
        raise ChainError(f"certificate power {power} below the quorum {vset.quorum} of {vset.total_power}")


def verify_block(block: dict, vset: ValidatorSet, chain_id: str) -> bytes:
    """A block as `GET /v1/blocks/{h}` shows it ({height, id, header, txs: [{hash, bytes}],
    certificate: hex}): the header's id, every transaction's hash, the tx root and the
    certificate against ``vset``. Returns the block id; raises ChainError."""
    try:
        header = proto.decode("Header", header_bytes(block["header"]))
    except (ValueError, proto.DecodeError) as e:
        raise ChainError(f"header does not decode: {e}") from None
    if header["chain_id"] != chain_id:
        raise ChainError("header of another chain")
    bid = hashing.H(hashing.HEADER, chain_id, proto.encode("Header", header))
    if block.get("id") is not None and bytes.fromhex(block["id"]) != bid:
        raise ChainError("block id is not the hash of its header")
    raws = []
    for t in block["txs"]:
        if t.get("hidden") or "bytes" not in t:
            # the read policy (SPEC.md §14.3) hides a transaction's bytes from non-parties, and
            # the tx tree's leaves are over the bytes: read the block as a supervisor
            raise ChainError("a transaction is hidden by the read policy: tx_root cannot be checked "
                             "(read the block with a supervisor's signed request)")
        raw = bytes.fromhex(t["bytes"])
        if t.get("hash") is not None and bytes.fromhex(t["hash"]) != hashing.blake3(raw):
            raise ChainError("a transaction's hash is not blake3 of its bytes")
        raws.append(raw)
    if tx_root(raws) != header["tx_root"]:
        raise ChainError("tx_root does not match the transactions")
    cert = decode_certificate(bytes.fromhex(block["certificate"]))
    if cert["height"] != header["height"] or cert["value_id"] != bid:
        raise ChainError("certificate is for another block")
    verify_certificate(cert, vset, chain_id)
    return bid

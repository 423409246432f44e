"""Hashing (SPEC.md §2): domain-separated blake3 digests and plain blake3."""

from __future__ import annotations

import struct

from blake3 import blake3 as _blake3

# SPEC.md §2.2: every tag and what it covers.
TX = "dpx/tx/v1"
GRANT = "dpx/grant/v1"
VOTE = "dpx/vote/v1"
PROPOSAL = "dpx/proposal/v1"
ROTATE_KEY = "dpx/rotate-key/v1"
HEADER = "dpx/header/v1"
VALIDATOR_SET = "dpx/validator-set/v1"
OBJECT_ID = "dpx/object-id/v1"
MERKLE_LEAF = "dpx/merkle/leaf/v1"
RECEIPTS = "dpx/receipts/v1"
MERKLE_NODE = "dpx/merkle/node/v1"
CERTIFICATE = "dpx/certificate/v1"
ATTESTATION = "dpx/attestation/v1"
# The signed-RPC-request scheme (auth-scheme, RFC 9421 profile).
RPC_REQUEST = "dpx/rpc-request/v1"
SUBJECT_KEY = "dpx/subject-key/v1"
GRANT_ID = "dpx/grant-id/v1"

ALL_DOMAINS = (
    TX, GRANT, VOTE, PROPOSAL, ROTATE_KEY, HEADER, VALIDATOR_SET, OBJECT_ID,
    MERKLE_LEAF, RECEIPTS, MERKLE_NODE, CERTIFICATE, ATTESTATION, SUBJECT_KEY, GRANT_ID,
)  # hashing.json's table; RPC_REQUEST is in SPEC.md §2.2 but not in that vector file

ZERO32 = bytes(32)


def u64le(n: int) -> bytes:
    return struct.pack("<Q", n)


def u32le(n: int) -> bytes:
    return struct.pack("<I", n)


def u64be(n: int) -> bytes:
    return struct.pack(">Q", n)


def u32be(n: int) -> bytes:
    return struct.pack(">I", n)


def _b(x) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


def preimage(domain, chain_id, *parts) -> bytes:
    """The bytes H hashes: every piece prefixed by its length as u64 little-endian."""
    out = bytearray()
    for piece in (domain, chain_id, *parts):
        piece = _b(piece)
        out += u64le(len(piece))
        out += piece
    return bytes(out)


def H(domain, chain_id, *parts) -> bytes:  # noqa: N802 - the spec's name
    """SPEC.md §2.1 H(domain, chain_id, part1, ..., partn)."""
    return _blake3(preimage(domain, chain_id, *parts)).digest()


def blake3(data: bytes) -> bytes:
    """Plain blake3, no prefix (tx hashes, certificate hash, state-tree hashes)."""
    return _blake3(bytes(data)).digest()

"""Transactions (SPEC.md §5): build, sign, encode, hash, decode with the node's stateless checks."""

from __future__ import annotations

from dataclasses import dataclass

from . import hashing, proto, schema  # noqa: F401  (schema registers the messages)
from .keys import Keypair, verify

MAX_TX_BYTES = 131072  # SPEC.md §4.3 hard limit
OBJECT_KINDS = {"list_product": "product", "post_demand": "demand", "place_order": "order",
                "propose": "proposal"}


@dataclass(frozen=True)
class SignedTx:
    body: dict            # the decoded TransactionBody (proto dict form)
    body_bytes: bytes
    signer: bytes
    signature: bytes
    raw: bytes            # the SignedTransaction bytes: what is submitted

    @property
    def hash(self) -> bytes:
        """SPEC.md §5.2: plain blake3 of the transaction bytes."""
        return hashing.blake3(self.raw)

    @property
    def op_type(self) -> str:
        return next(k for k, v in self.body["op"].items() if v is not None)

    @property
    def nonce(self) -> int:
        return self.body.get("nonce", 0)

    def created_id(self, chain_id: str) -> bytes | None:
        """The id of the object this transaction creates (§5.4), if any."""
        kind = OBJECT_KINDS.get(self.op_type)
        return object_id(kind, chain_id, self.signer, self.nonce) if kind else None

    def body_json(self) -> dict:
        j = proto.to_json("TransactionBody", self.body)
        return j


def object_id(kind: str, chain_id: str, signer: bytes, nonce: int) -> bytes:
    """SPEC.md §5.4: H("dpx/object-id/v1", chain_id, kind, signer, u64le(nonce))."""
    return hashing.H(hashing.OBJECT_ID, chain_id, kind.encode(), signer, hashing.u64le(nonce))


def encode_body(chain_id: str, nonce: int, op: dict, expiry_height: int | None = None) -> bytes:
    """``op`` is the JSON view ({"type": "admit", ...}) or the proto dict form ({"admit": {...}})."""
    op_msg = proto.from_json("Operation", op) if "type" in op else op
    return proto.encode("TransactionBody", {"chain_id": chain_id, "nonce": nonce,
                                            "expiry_height": expiry_height, "op": op_msg})


def sign_transaction(key: Keypair, chain_id: str, nonce: int, op: dict,
                     expiry_height: int | None = None) -> SignedTx:
    body_bytes = encode_body(chain_id, nonce, op, expiry_height)
    signature = key.sign(hashing.TX, chain_id, body_bytes)
    raw = proto.encode("SignedTransaction", {"body": body_bytes, "signer": key.public_key,
                                             "signature": signature})
    if len(raw) > MAX_TX_BYTES:
        raise ValueError(f"transaction of {len(raw)} bytes exceeds {MAX_TX_BYTES}")
    return SignedTx(proto.decode("TransactionBody", body_bytes), body_bytes, key.public_key,
                    signature, raw)


class TxRefused(ValueError):
    pass


def decode_transaction(raw: bytes, chain_id: str | None = None, check_signature: bool = True) -> SignedTx:
    """The stateless checks of §5.2 that need no chain state: size, canonical envelope and body,
    chain id, an operation present, keys and sizes, the signature (§3.3)."""
    if len(raw) > MAX_TX_BYTES:
        raise TxRefused(f"transaction of {len(raw)} bytes exceeds {MAX_TX_BYTES}")
    try:
        env = proto.decode("SignedTransaction", raw)
        body = proto.decode("TransactionBody", env["body"])
    except proto.DecodeError as e:
        raise TxRefused(f"undecodable: {e}") from None
    if body["op"] is None:
        raise TxRefused("undecodable: no operation")
    if chain_id is not None and body["chain_id"] != chain_id:
        raise TxRefused(f"wrong chain id {body['chain_id']!r} (expected {chain_id!r})")
    if check_signature and not verify(env["signer"], hashing.TX, body["chain_id"], env["body"],
                                      env["signature"]):
        raise TxRefused("bad signature")
    return SignedTx(body, env["body"], env["signer"], env["signature"], bytes(raw))


def rotate_key_op(account: Keypair, new_key: Keypair, chain_id: str) -> dict:
    """SPEC.md §5.3: the new key signs H("dpx/rotate-key/v1", chain_id, account_key)."""
    sig = new_key.sign(hashing.ROTATE_KEY, chain_id, account.public_key)
    return {"type": "rotate_key", "new_key": new_key.public_key.hex(), "new_key_signature": sig.hex()}


def rotate_subject_key_op(subject_id: bytes, new_key: Keypair, chain_id: str) -> dict:
    """SPEC.md §6.1: the new key signs H("dpx/subject-key/v1", chain_id, subject_id)."""
    sig = new_key.sign(hashing.SUBJECT_KEY, chain_id, subject_id)
    return {"type": "rotate_subject_key", "subject_id": subject_id.hex(),
            "new_key": new_key.public_key.hex(), "new_key_signature": sig.hex()}

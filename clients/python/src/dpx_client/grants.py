"""One-use grants (SPEC.md §6): sign offline, compact strings, verify."""

from __future__ import annotations

import base64
import os
import re

from . import hashing, proto, schema  # noqa: F401
from .keys import Keypair, verify

MAX_SIGNED_GRANT_BYTES = 1024
MAX_COMPACT_CHARS = 1368
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class GrantError(ValueError):
    pass


def grant_bytes(grant: dict) -> bytes:
    """Canonical ``Grant`` bytes; ``grant`` in JSON view (hex) or proto dict (bytes) form."""
    return proto.encode("Grant", proto.from_json("Grant", grant))


def subject_id(registrar_secret: bytes, identifier: str | bytes) -> bytes:
    """SPEC.md §6.1: blake3::keyed_hash(registrar_secret, identifier), computed off-ledger."""
    from blake3 import blake3 as _b3
    if isinstance(identifier, str):
        identifier = identifier.encode()
    if len(registrar_secret) != 32:
        raise GrantError("registrar secret must be 32 bytes")
    return _b3(identifier, key=registrar_secret).digest()


def grant_id(subject: bytes, serial: bytes) -> bytes:
    """SPEC.md §6: id = H("dpx/grant-id/v1", "", subject id, serial)."""
    return hashing.H(hashing.GRANT_ID, "", subject, serial)


def sign_grant(key: Keypair, chain_id: str, subject: bytes, consumer: bytes, product: bytes,
               purpose: str, expires_at_ms: int, epoch: int = 0,
               serial: bytes | None = None) -> dict:
    """Returns the ``SignedGrant`` as a proto dict. ``key`` is the subject's current key,
    ``subject`` its 32-byte subject id; the key signs the ``Grant`` alone."""
    if not 1 <= len(purpose.encode()) <= 256:
        raise GrantError("purpose must be 1-256 bytes")
    if len(subject) != 32:
        raise GrantError("subject id must be 32 bytes")
    g = {"serial": serial or os.urandom(32), "subject": subject, "key": key.public_key,
         "epoch": epoch, "consumer": consumer, "product": product, "purpose": purpose,
         "expires_at_ms": expires_at_ms}
    sig = key.sign(hashing.GRANT, chain_id, proto.encode("Grant", g))
    return {"grant": g, "signature": sig}


def signed_grant_id(signed: dict) -> bytes:
    g = signed["grant"]
    return grant_id(g["subject"], g["serial"])


def encode_signed_grant(signed: dict) -> bytes:
    return proto.encode("SignedGrant", signed)


def decode_signed_grant(raw: bytes) -> dict:
    if len(raw) > MAX_SIGNED_GRANT_BYTES:
        raise GrantError(f"signed grant of {len(raw)} bytes exceeds {MAX_SIGNED_GRANT_BYTES}")
    try:
        sg = proto.decode("SignedGrant", raw)
    except proto.DecodeError as e:
        raise GrantError(str(e)) from None
    if sg["grant"] is None:
        raise GrantError("signed grant without a grant")
    if not 1 <= len(sg["grant"]["purpose"].encode()) <= 256:
        raise GrantError("purpose must be 1-256 bytes")
    return sg


def verify_signed_grant(signed: dict, chain_id: str) -> bool:
    g = signed["grant"]
    return verify(g["key"], hashing.GRANT, chain_id, proto.encode("Grant", g), signed["signature"])


def to_compact(signed: dict) -> str:
    """Unpadded base64url of the canonical SignedGrant bytes."""
    return base64.urlsafe_b64encode(encode_signed_grant(signed)).rstrip(b"=").decode()


def from_compact(text: str) -> dict:
    text = text.strip()
    if len(text) > MAX_COMPACT_CHARS:
        raise GrantError(f"compact grant longer than {MAX_COMPACT_CHARS} characters")
    if not _B64URL.match(text):
        raise GrantError("compact grant: only unpadded base64url (A-Z a-z 0-9 - _) is accepted")
    if len(text) % 4 == 1:
        raise GrantError("compact grant: impossible length")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # refuse non-canonical trailing bits: re-encoding must give the same text
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        raise GrantError("compact grant: non-canonical base64")
    return decode_signed_grant(raw)


def state_key(grant_id: bytes) -> bytes:
    return b"grant/" + grant_id

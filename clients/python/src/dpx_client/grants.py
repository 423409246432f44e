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


def sign_grant(subject: Keypair, chain_id: str, consumer: bytes, product: bytes, purpose: str,
               expiry_height: int, grant_id: bytes | None = None) -> dict:
    """Returns the ``SignedGrant`` as a proto dict. The subject signs the ``Grant`` alone."""
    if not 1 <= len(purpose.encode()) <= 256:
        raise GrantError("purpose must be 1-256 bytes")
    g = {"id": grant_id or os.urandom(32), "subject": subject.public_key, "consumer": consumer,
         "product": product, "purpose": purpose, "expiry_height": expiry_height}
    sig = subject.sign(hashing.GRANT, chain_id, proto.encode("Grant", g))
    return {"grant": g, "signature": sig}


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
    return verify(g["subject"], hashing.GRANT, chain_id, proto.encode("Grant", g), signed["signature"])


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

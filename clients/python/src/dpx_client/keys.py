"""Keys and signatures (SPEC.md §1 key files, §3).

Signing: the 32-byte digest H(domain, chain_id, bytes) is the ed25519 message (RFC 8032 pure).
Verification implements dpx's one rule (§3.3) with libsodium (through PyNaCl):
``crypto_sign_open`` refuses S >= l, a small-order R, non-canonical and small-order keys and
compares R by its encoding (cofactorless); ``crypto_core_ed25519_is_valid_point`` adds the
prime-order-subgroup check of the key (§3.1 rule 2).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions

from . import hashing

KEY_FILE_TYPE = "dpx-ed25519-v1"


class KeyError_(ValueError):
    """A key or key file that dpx would refuse."""


def is_valid_public_key(key: bytes) -> bool:
    """SPEC.md §3.1: canonical encoding, on the curve, in the prime-order subgroup, not small order."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        return False
    return bool(sodium.crypto_core_ed25519_is_valid_point(bytes(key)))


def verify_digest(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """SPEC.md §3.3 rules 1-4 over a 32-byte digest. Never raises on bad input."""
    if len(digest) != 32 or len(signature) != 64 or not is_valid_public_key(public_key):
        return False
    try:
        sodium.crypto_sign_open(bytes(signature) + bytes(digest), bytes(public_key))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def verify(public_key: bytes, domain: str, chain_id: str, message: bytes, signature: bytes) -> bool:
    return verify_digest(public_key, hashing.H(domain, chain_id, message), signature)


@dataclass(frozen=True)
class Keypair:
    seed: bytes
    public_key: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> "Keypair":
        if len(seed) != 32:
            raise KeyError_(f"a secret seed is 32 bytes, got {len(seed)}")
        pk, _sk = sodium.crypto_sign_seed_keypair(bytes(seed))
        return cls(bytes(seed), pk)

    @classmethod
    def generate(cls) -> "Keypair":
        return cls.from_seed(os.urandom(32))

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ValueError("dpx signs 32-byte digests")
        _pk, sk = sodium.crypto_sign_seed_keypair(self.seed)
        return sodium.crypto_sign(bytes(digest), sk)[:64]

    def sign(self, domain: str, chain_id: str, message: bytes) -> bytes:
        """SPEC.md §3.2: sign H(domain, chain_id, message)."""
        return self.sign_digest(hashing.H(domain, chain_id, message))

    # ---- key files (SPEC.md §1) ----
    def to_json(self) -> str:
        return json.dumps({"type": KEY_FILE_TYPE, "public_key": self.public_key.hex(),
                           "secret_seed": self.seed.hex()})

    def save(self, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.to_json())

    @classmethod
    def from_json(cls, text: str) -> "Keypair":
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise KeyError_(f"key file is not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise KeyError_("key file must be a JSON object")
        if doc.get("type") != KEY_FILE_TYPE:
            raise KeyError_(f"key file type must be {KEY_FILE_TYPE!r}, got {doc.get('type')!r}")
        seed = parse_hex(doc.get("secret_seed"), 32, "secret_seed")
        pk = parse_hex(doc.get("public_key"), 32, "public_key")
        kp = cls.from_seed(seed)
        if kp.public_key != pk:
            raise KeyError_("key file: public_key does not match the key derived from secret_seed")
        return kp

    @classmethod
    def load(cls, path: str) -> "Keypair":
        with open(path) as f:
            return cls.from_json(f.read())


def load_key_file_checked(path: str) -> Keypair:
    """Load a key file and warn (raise) if others may read it (dpx writes mode 0600)."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyError_(f"{path}: key file readable by others (mode {oct(mode & 0o777)})")
    return Keypair.load(path)


def parse_hex(text, size: int | None, what: str) -> bytes:
    """Lowercase or uppercase hex of exactly ``size`` bytes (None: any size)."""
    if not isinstance(text, str):
        raise KeyError_(f"{what}: expected a hex string")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise KeyError_(f"{what}: not hex") from None
    if len(text) != 2 * len(raw):  # fromhex skips whitespace; dpx does not
        raise KeyError_(f"{what}: not hex")
    if size is not None and len(raw) != size:
        raise KeyError_(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw

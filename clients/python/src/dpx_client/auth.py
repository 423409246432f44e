"""Signed RPC requests: dpx's profile of HTTP Message Signatures (RFC 9421).

Headers of a signed request::

    Signature-Input: dpx=("@method" "@path" "@query" "content-digest");created=...;nonce="...";keyid="<hex key>";alg="dpx-ed25519-blake3"
    Signature: dpx=:<base64 of the 64-byte ed25519 signature>:
    Content-Digest: sha-256=:<base64 of sha256(body)>:     (only with a body)

The signature base is RFC 9421 §2.5 (one ``"<component>": <value>`` line per covered component,
then ``"@signature-params": <the Signature-Input value after "dpx=">``, joined by ``\\n``); it is
signed with dpx's one rule: ed25519 over H("dpx/rpc-request/v1", chain_id, base).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import hashing
from .keys import Keypair, is_valid_public_key, verify_digest

LABEL = "dpx"
ALG = "dpx-ed25519-blake3"
DOMAIN = hashing.RPC_REQUEST
MAX_SKEW_S = 60
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class AuthError(ValueError):
    """A signed request that a dpx node refuses (HTTP 401 `unauthenticated`)."""


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def random_nonce(n: int = 22) -> str:
    raw = os.urandom(n)
    return "".join(_NONCE_ALPHABET[b & 63] for b in raw)


def signature_params(components: list, created: int, nonce: str, keyid: str,
                     expires: int | None = None) -> str:
    """The Signature-Input value after ``dpx=``."""
    inner = " ".join(f'"{c}"' for c in components)
    params = f"({inner});created={created}"
    if expires is not None:
        params += f";expires={expires}"
    return params + f';nonce="{nonce}";keyid="{keyid}";alg="{ALG}"'


def signature_base(method: str, path: str, query: str, digest_header: str | None, params: str) -> str:
    """RFC 9421 §2.5 for dpx's components. ``query`` is the raw query string without ``?``."""
    lines = [f'"@method": {method.upper()}', f'"@path": {path}', f'"@query": ?{query}']
    if digest_header is not None:
        lines.append(f'"content-digest": {digest_header}')
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines)


def request_digest(chain_id: str, base: str) -> bytes:
    return hashing.H(DOMAIN, chain_id, base.encode("utf-8"))


def sign_request(key: Keypair, chain_id: str, method: str, path: str, query: str = "",
                 body: bytes | None = None, created: int | None = None, nonce: str | None = None,
                 expires: int | None = None) -> dict:
    """The headers that sign one request. ``path`` exactly as sent (percent-encoded)."""
    created = int(time.time()) if created is None else created
    nonce = random_nonce() if nonce is None else nonce
    if not _NONCE.match(nonce):
        raise ValueError("nonce: 16-64 characters of [A-Za-z0-9_-]")
    has_body = body is not None and len(body) > 0
    components = ["@method", "@path", "@query"] + (["content-digest"] if has_body else [])
    digest_header = content_digest(body) if has_body else None
    params = signature_params(components, created, nonce, key.public_key.hex(), expires)
    base = signature_base(method, path, query, digest_header, params)
    sig = key.sign_digest(request_digest(chain_id, base))
    headers = {"Signature-Input": f"{LABEL}={params}",
               "Signature": f"{LABEL}=:{base64.b64encode(sig).decode()}:"}
    if digest_header is not None:
        headers["Content-Digest"] = digest_header
    return headers


# ---------------------------------------------------------------- verification (what a node checks)

_INPUT = re.compile(r'^dpx=\(((?:"[a-z@-]+"(?: "[a-z@-]+")*)?)\)((?:;[a-z]+=(?:[0-9]+|"[^"\\]*"))*)$')
_PARAM = re.compile(r';([a-z]+)=([0-9]+|"[^"\\]*")')
_SIG = re.compile(r"^dpx=:([A-Za-z0-9+/]+={0,2}):$")


@dataclass(frozen=True)
class Verified:
    key: bytes
    created: int
    nonce: str


def verify_request(headers: dict, method: str, path: str, query: str, body: bytes | None,
                   chain_id: str, now: int, max_skew_s: int = MAX_SKEW_S) -> Verified:
    """The checks of the scheme except the replay cache; raises AuthError saying which failed."""
    hd = {k.lower(): v for k, v in headers.items()}
    si, sg = hd.get("signature-input"), hd.get("signature")
    if si is None or sg is None:
        raise AuthError("missing Signature-Input or Signature header")
    m = _INPUT.match(si)
    if not m:
        raise AuthError("Signature-Input does not parse (label must be dpx)")
    components = [c.strip('"') for c in m.group(1).split(" ")] if m.group(1) else []
    params = {}
    for k, v in _PARAM.findall(m.group(2)):
        if k in params:
            raise AuthError(f"parameter {k} given twice")
        params[k] = v.strip('"') if v.startswith('"') else int(v)
    has_body = body is not None and len(body) > 0
    want = ["@method", "@path", "@query"] + (["content-digest"] if has_body else [])
    if components != want:
        raise AuthError(f"covered components must be exactly {want}")
    for p in ("created", "nonce", "keyid", "alg"):
        if p not in params:
            raise AuthError(f"parameter {p} missing")
    if params["alg"] != ALG:
        raise AuthError(f"alg must be {ALG}")
    if not isinstance(params["created"], int) or ("expires" in params and not isinstance(params["expires"], int)):
        raise AuthError("created and expires are integers")
    if not isinstance(params["nonce"], str) or not _NONCE.match(params["nonce"]):
        raise AuthError("nonce: 16-64 characters of [A-Za-z0-9_-]")
    keyid = params["keyid"]
    if not isinstance(keyid, str) or not re.fullmatch(r"[0-9a-f]{64}", keyid) or \
            not is_valid_public_key(bytes.fromhex(keyid)):
        raise AuthError("keyid is not a valid public key (64 lowercase hex)")
    if abs(now - params["created"]) > max_skew_s:
        raise AuthError("created is outside the allowed clock skew")
    if "expires" in params and params["expires"] < now:
        raise AuthError("the signature has expired")
    digest_header = None
    if has_body:
        digest_header = hd.get("content-digest")
        if digest_header != content_digest(body):
            raise AuthError("Content-Digest does not match the body")
    sm = _SIG.match(sg)
    if not sm:
        raise AuthError("Signature header does not parse")
    sig = base64.b64decode(sm.group(1))
    base = signature_base(method, path, query, digest_header, si[len("dpx="):])
    key = bytes.fromhex(keyid)
    if len(sig) != 64 or not verify_digest(key, request_digest(chain_id, base), sig):
        raise AuthError("signature does not verify")
    return Verified(key, params["created"], params["nonce"])


# ---------------------------------------------------------------- requests integration

try:
    import requests

    class DpxAuth(requests.auth.AuthBase):
        """``requests`` auth hook: ``session.auth = DpxAuth(key, chain_id)`` signs every request."""

        def __init__(self, key: Keypair, chain_id: str, expires_in_s: int | None = None):
            self.key = key
            self.chain_id = chain_id
            self.expires_in_s = expires_in_s

        def __call__(self, r):
            u = urlsplit(r.path_url)
            body = r.body
            if isinstance(body, str):
                body = body.encode("utf-8")
            created = int(time.time())
            expires = created + self.expires_in_s if self.expires_in_s else None
            r.headers.update(sign_request(self.key, self.chain_id, r.method, u.path, u.query,
                                          body, created=created, expires=expires))
            return r
except ImportError:  # pragma: no cover
    pass

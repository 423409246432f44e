"""dpx_client: an independent client and verifier for dpx, written from SPEC.md.

Modules: ``hashing`` (§2), ``keys`` (§1, §3), ``proto`` (a canonical protobuf codec, §4),
``schema`` (the .proto messages), ``tx`` (§5), ``grants`` (§6), ``chain`` (headers, trees,
votes, validator sets, certificates; §7), ``state`` (§8), ``bundle`` (§11), ``events`` (§10),
``rpc`` (the HTTP API), ``auth`` (signed RPC requests, RFC 9421 profile).
"""

from .keys import Keypair  # noqa: F401

__version__ = "0.1.0"

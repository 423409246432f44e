"""Hostile bytes: every decoder of outside input refuses with its own error, never crashes.

A seeded mutation loop (deterministic) over the vectors' valid encodings: byte flips,
truncations, insertions and random strings."""

import json
import random

from conftest import h, load

from dpx_client import bundle, grants, proto, state, tx
from dpx_client import chain as chain_mod

SEED = 20261130
ROUNDS = 3000


def _mutants(rng, raw: bytes):
    for _ in range(ROUNDS // 6):
        b = bytearray(raw)
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            b = b[:rng.randrange(len(b) + 1)]
        elif op == 2:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        else:
            b = bytearray(rng.randrange(256) for _ in range(rng.randrange(64)))
        yield bytes(b)


def test_transaction_decoder():
    rng = random.Random(SEED)
    for c in load("transactions.json")["transactions"]:
        raw = h(c["signed_transaction"])
        for m in _mutants(rng, raw):
            try:
                t = tx.decode_transaction(m, "dpx-spec")
                assert m == raw or t.raw == m  # anything accepted is a signed, canonical tx
            except tx.TxRefused:
                pass


def test_grant_and_compact_decoders():
    rng = random.Random(SEED + 1)
    v = load("grants.json")
    raw = h(v["signed_grant"])
    for m in _mutants(rng, raw):
        try:
            grants.decode_signed_grant(m)
        except grants.GrantError:
            pass
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \n"
    for _ in range(500):
        text = list(v["compact"])
        for _ in range(rng.randrange(1, 4)):
            text[rng.randrange(len(text))] = rng.choice(alphabet)
        try:
            grants.from_compact("".join(text))
        except grants.GrantError:
            pass


def test_header_certificate_proof_decoders():
    rng = random.Random(SEED + 2)
    hdr = h(load("blocks.json")["headers"][0]["header_bytes"])
    cert = h(load("consensus.json")["certificates"][0]["certificate_bytes"])
    prf = h(load("state_tree.json")["proofs"][0]["proof_protobuf"])
    for m in _mutants(rng, hdr):
        try:
            proto.decode("Header", m)
        except proto.DecodeError:
            pass
    for m in _mutants(rng, cert):
        try:
            chain_mod.decode_certificate(m)
        except chain_mod.ChainError:
            pass
    for m in _mutants(rng, prf):
        try:
            state.proof_from_protobuf(m)
        except state.ProofError:
            pass


def test_bundle_json_junk():
    rng = random.Random(SEED + 3)
    v = load("proof_bundle.json")
    text = json.dumps(v["bundle"])
    refused = 0
    for _ in range(400):
        t = list(text)
        for _ in range(rng.randrange(1, 3)):
            t[rng.randrange(len(t))] = rng.choice('0123456789abcdef"{}[],:nul ')
        try:
            doc = json.loads("".join(t))
        except ValueError:
            continue
        try:
            bundle.verify_bundle(doc, v["genesis"])
        except bundle.BundleError:
            refused += 1
    assert refused > 50

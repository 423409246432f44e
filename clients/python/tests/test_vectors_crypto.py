"""hashing.json, keys.json, signatures.json, enums.json (SPEC.md §2, §3, §9)."""

from conftest import h, load

from dpx_client import hashing, keys, proto, schema  # noqa: F401


def test_domain_tags_are_the_spec_table():
    v = load("hashing.json")
    tags = [d["tag"] for d in v["domains"]]
    assert sorted(tags) == sorted(hashing.ALL_DOMAINS)


def test_domain_hash_cases():
    v = load("hashing.json")
    assert v["cases"]
    for c in v["cases"]:
        parts = [h(p) for p in c["parts"]]
        assert hashing.preimage(c["domain"], c["chain_id"], *parts).hex() == c["preimage"], c["name"]
        assert hashing.H(c["domain"], c["chain_id"], *parts).hex() == c["digest"], c["name"]


def test_plain_blake3():
    for c in load("hashing.json")["plain"]:
        assert hashing.blake3(h(c["message"])).hex() == c["blake3"]


def test_keys_from_seed():
    v = load("keys.json")
    for c in v["valid"]:
        kp = keys.Keypair.from_seed(h(c["seed"]))
        assert kp.public_key.hex() == c["public_key"]
        assert keys.is_valid_public_key(kp.public_key)


def test_invalid_public_keys_refused():
    v = load("keys.json")
    assert len(v["invalid"]) == 52
    for c in v["invalid"]:
        assert not keys.is_valid_public_key(h(c["public_key"])), c["name"]


def test_signatures_valid():
    v = load("signatures.json")
    for c in v["valid"]:
        kp = keys.Keypair.from_seed(h(c["seed"]))
        assert kp.public_key.hex() == c["public_key"]
        d = hashing.H(c["domain"], c["chain_id"], h(c["message"]))
        assert d.hex() == c["digest"]
        sig = kp.sign(c["domain"], c["chain_id"], h(c["message"]))
        assert sig.hex() == c["signature"]
        assert keys.verify_digest(kp.public_key, d, sig)
        # a signature over one digest never verifies another
        assert not keys.verify_digest(kp.public_key, bytes(32), sig)


def test_signatures_invalid_refused():
    v = load("signatures.json")
    assert v["invalid"]
    for c in v["invalid"]:
        assert c["valid"] is False
        assert not keys.verify_digest(h(c["public_key"]), h(c["digest"]), h(c["signature"])), c["name"]


def test_enums_match():
    v = load("enums.json")["enums"]
    assert set(v) == set(proto.ENUMS)
    for name, rows in v.items():
        assert {r["code"]: r["name"] for r in rows} == proto.ENUMS[name], name


def test_key_file_round_trip(tmp_path):
    kp = keys.Keypair.from_seed(bytes(range(32)))
    p = tmp_path / "k.json"
    kp.save(str(p))
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert keys.load_key_file_checked(str(p)) == kp


def test_key_file_mismatch_refused():
    import json
    import pytest
    kp = keys.Keypair.from_seed(bytes(32))
    other = keys.Keypair.from_seed(bytes([1]) * 32)
    doc = {"type": "dpx-ed25519-v1", "public_key": other.public_key.hex(), "secret_seed": kp.seed.hex()}
    with pytest.raises(keys.KeyError_, match="does not match"):
        keys.Keypair.from_json(json.dumps(doc))
    for bad in ['[]', '{"type": "x"}', 'nope',
                json.dumps({**doc, "public_key": kp.public_key.hex(), "secret_seed": "zz" * 32}),
                json.dumps({**doc, "public_key": kp.public_key.hex(), "secret_seed": "00" * 31})]:
        with pytest.raises(keys.KeyError_):
            keys.Keypair.from_json(bad)

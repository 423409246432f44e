"""proof_bundle.json (SPEC.md §11) and tampering: every byte of a bundle matters."""

import copy

import pytest
from conftest import h, load

from dpx_client import bundle


def test_valid_bundle_verifies():
    v = load("proof_bundle.json")
    assert v["valid"] is True
    got = bundle.verify_bundle(v["bundle"], v["genesis"])
    assert got.value == h(v["bundle"]["value"])
    assert got.version == v["bundle"]["version"]
    # the same bundle inside `dpx audit prove` output
    assert bundle.verify_bundle({"kind": "x", "id": "y", "bundle": v["bundle"]}, v["genesis"]).key == got.key


@pytest.mark.parametrize("i", range(4))
def test_tampered_bundles_refused(i):
    v = load("proof_bundle.json")
    t = v["tampered"][i]
    assert t["valid"] is False
    with pytest.raises(bundle.BundleError) as e:
        bundle.verify_bundle(t["bundle"], v["genesis"])
    assert str(e.value)  # a reason


def _hex_paths(obj, path=()):
    """Every (path, hex string) in the bundle."""
    if isinstance(obj, dict):
        for k, x in obj.items():
            yield from _hex_paths(x, path + (k,))
    elif isinstance(obj, list):
        for i, x in enumerate(obj):
            yield from _hex_paths(x, path + (i,))
    elif isinstance(obj, str) and len(obj) >= 2 and len(obj) % 2 == 0:
        try:
            bytes.fromhex(obj)
        except ValueError:
            return
        yield path, obj


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def test_every_byte_flip_is_refused():
    v = load("proof_bundle.json")
    base = v["bundle"]
    flips = 0
    for path, text in _hex_paths(base):
        if path == ("chain_id",) or path[:2] == ("header", "chain_id"):
            continue
        raw = bytes.fromhex(text)
        for i in range(len(raw)):
            for mask in (0x01, 0x80):
                bad = bytearray(raw)
                bad[i] ^= mask
                b = copy.deepcopy(base)
                _set(b, path, bad.hex())
                with pytest.raises(bundle.BundleError):
                    bundle.verify_bundle(b, v["genesis"])
                flips += 1
    assert flips > 1000


def test_numbers_and_structure_tampering_refused():
    v = load("proof_bundle.json")
    g = v["genesis"]
    cases = []
    b = copy.deepcopy(v["bundle"]); b["version"] += 1; cases.append(("version", b))
    b = copy.deepcopy(v["bundle"]); b["header"]["height"] += 1; cases.append(("height", b))
    b = copy.deepcopy(v["bundle"]); b["header"]["time_ms"] += 1; cases.append(("time", b))
    b = copy.deepcopy(v["bundle"]); b["value"] = None; cases.append(("absence claimed", b))
    b = copy.deepcopy(v["bundle"]); b["chain_id"] = "other"; cases.append(("chain", b))
    b = copy.deepcopy(v["bundle"]); b["validators"] = b["validators"][:3]; cases.append(("drop validator", b))
    b = copy.deepcopy(v["bundle"]); b["validators"].reverse(); cases.append(("reorder validators", b))
    b = copy.deepcopy(v["bundle"]); b["proof"]["siblings"].pop(); cases.append(("drop sibling", b))
    b = copy.deepcopy(v["bundle"]); b["proof"]["siblings"].append("null"); cases.append(("add sibling", b))
    b = copy.deepcopy(v["bundle"]); b["proof"]["leaf"] = None; cases.append(("no leaf", b))
    b = copy.deepcopy(v["bundle"]); b["certificate"] = ""; cases.append(("no certificate", b))
    b = copy.deepcopy(v["bundle"]); del b["header"]; cases.append(("no header", b))
    b = copy.deepcopy(v["bundle"]); b["validators"][0]["power"] = True; cases.append(("bool power", b))
    b = copy.deepcopy(v["bundle"]); b["proof"]["siblings"] = ["null"] * 300; cases.append(("too many siblings", b))
    for what, b in cases:
        with pytest.raises(bundle.BundleError):
            bundle.verify_bundle(b, g)
        assert what
    # a genesis with other validators refuses the honest bundle
    g2 = copy.deepcopy(g)
    g2["app"]["validators"][0]["power"] += 1
    with pytest.raises(bundle.BundleError, match="genesis validator set"):
        bundle.verify_bundle(v["bundle"], g2)
    for junk in [None, [], "x", {"bundle": 3}, {}]:
        with pytest.raises(bundle.BundleError):
            bundle.verify_bundle(junk, g)


def test_certificate_below_quorum_refused():
    """Drop signatures from the valid certificate until it lacks > 2/3 power."""
    from dpx_client import proto
    v = load("proof_bundle.json")
    cert = proto.decode("Certificate", h(v["bundle"]["certificate"]))
    assert len(cert["signatures"]) >= 3
    short = dict(cert, signatures=cert["signatures"][:2])  # 20 of 40: no quorum
    b = copy.deepcopy(v["bundle"])
    b["certificate"] = proto.encode("Certificate", short).hex()
    with pytest.raises(bundle.BundleError, match="quorum"):
        bundle.verify_bundle(b, v["genesis"])
    dup = dict(cert, signatures=[cert["signatures"][0]] * 3)
    b["certificate"] = proto.encode("Certificate", dup).hex()
    with pytest.raises(bundle.BundleError, match="strictly increasing"):
        bundle.verify_bundle(b, v["genesis"])

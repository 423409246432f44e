"""`dpx-py`: the independent verifier from the command line.

    dpx-py verify BUNDLE.json --genesis GENESIS.json   # exit 0 valid, 1 refused (reason on stderr)
    dpx-py keygen --out KEY.json
    dpx-py prove KIND ID --rpc URL --genesis GENESIS.json [--key KEY.json]
    dpx-py prove-tx HASH --rpc URL --genesis GENESIS.json [--key KEY.json]

`verify` takes a state bundle (`dpx audit prove`) or a transaction bundle (`dpx audit
prove-tx`, recognised by "kind": "tx").
"""

from __future__ import annotations

import argparse
import json
import sys

from . import bundle
from .keys import Keypair


def _tx_report(t: bundle.TxVerified) -> dict:
    return {"valid": True, "kind": "tx", "chain_id": t.chain_id, "hash": t.tx_hash.hex(),
            "height": t.height, "index": t.index, "block_id": t.block_id.hex(),
            "receipt_verified": t.receipt is not None,
            "receipt": None if t.receipt is None else t.receipt.hex(),
            "receipt_pending": t.receipt_pending}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="dpx-py")
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="verify a proof bundle against a genesis file")
    v.add_argument("bundle")
    v.add_argument("--genesis", required=True)
    k = sub.add_parser("keygen", help="write a new key file (mode 0600)")
    k.add_argument("--out", required=True)
    pr = sub.add_parser("prove", help="fetch a value with its proof and verify it")
    pr.add_argument("kind")
    pr.add_argument("id")
    pr.add_argument("--rpc", required=True)
    pr.add_argument("--genesis", required=True)
    pr.add_argument("--height", type=int)
    pr.add_argument("--key", help="sign the request with this key file (proofs follow the read "
                    "policy: grants, usage and orders are for their parties and supervisors)")
    pt = sub.add_parser("prove-tx", help="fetch a transaction's inclusion proof and verify it")
    pt.add_argument("hash")
    pt.add_argument("--rpc", required=True)
    pt.add_argument("--genesis", required=True)
    pt.add_argument("--key", help="sign the request with this key file (a transaction's proof "
                    "is for its parties and supervisors)")
    a = p.parse_args(argv)
    if a.cmd == "verify":
        try:
            doc, genesis = bundle.load_files(a.bundle, a.genesis)
            if bundle.is_tx_bundle(doc) or bundle.is_tx_bundle(doc.get("bundle")):
                t = bundle.verify_tx_bundle(doc, genesis)
                print(json.dumps(_tx_report(t)))
                return 0
            r = bundle.verify_bundle(doc, genesis)
        except (bundle.BundleError, OSError) as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
        print(json.dumps({"valid": True, "chain_id": r.chain_id, "key": r.key.hex(),
                          "value": None if r.value is None else r.value.hex(),
                          "version": r.version, "block_id": r.block_id.hex()}))
        return 0
    if a.cmd == "keygen":
        kp = Keypair.generate()
        kp.save(a.out)
        print(kp.public_key.hex())
        return 0
    if a.cmd == "prove-tx":
        from .rpc import Client
        with open(a.genesis) as f:
            genesis = json.load(f)
        try:
            auth = None
            if a.key:
                from .auth import DpxAuth
                from .keys import load_key_file_checked
                auth = DpxAuth(load_key_file_checked(a.key), genesis["chain_id"])
            t = Client(a.rpc, auth=auth).prove_tx(a.hash, genesis)
        except bundle.BundleError as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
        print(json.dumps(_tx_report(t)))
        return 0
    if a.cmd == "prove":
        from .rpc import Client
        with open(a.genesis) as f:
            genesis = json.load(f)
        try:
            auth = None
            if a.key:
                from .auth import DpxAuth
                from .keys import load_key_file_checked
                auth = DpxAuth(load_key_file_checked(a.key), genesis["chain_id"])
            r = Client(a.rpc, auth=auth).prove(a.kind, a.id, genesis, a.height)
        except bundle.BundleError as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
        print(json.dumps({"valid": True, "version": r.version, "value": None if r.value is None else r.value.hex()}))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())

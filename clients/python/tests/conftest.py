import json
import os
import pathlib

import pytest

VECTORS = pathlib.Path(os.environ.get(
    "DPX_VECTORS", pathlib.Path(__file__).resolve().parents[3] / "spec" / "vectors"))


def load(name: str):
    with open(VECTORS / name) as f:
        return json.load(f)


@pytest.fixture
def vectors():
    return load


def h(x: str) -> bytes:
    return bytes.fromhex(x)

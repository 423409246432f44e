"""A small canonical protobuf codec (SPEC.md §4), driven by the schemas in ``schema.py``.

Only what the dpx schemas use: varint scalars (uint32, uint64, bool), strings, bytes, embedded
messages, ``optional`` (explicit presence), packed repeated scalars, repeated messages/bytes/
strings and ``oneof``. Encoding writes the canonical form of §4.1; ``decode(strict=True)``
accepts only bytes that re-encode identically (§4.2) and checks key/hash/signature sizes and
key validity (§3.1, §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .keys import is_valid_public_key


class DecodeError(ValueError):
    """Bytes that dpx would not decode."""


@dataclass(frozen=True)
class Field:
    num: int
    name: str
    kind: str  # uint32 uint64 bool string bytes key hash sig enum:<Name> msg:<Name>
    label: str = ""  # "" implicit, "opt" explicit presence, "rep" repeated, "oneof" member
    group: str = ""  # oneof group name
    # A scalar whose JSON form is an object of one member (the Rust side's struct variants,
    # e.g. ProposalAction.set_platform_fee is {"basis_points": 250} in JSON, a uint32 on the wire).
    json_key: str = ""

    @property
    def is_msg(self) -> bool:
        return self.kind.startswith("msg:")

    @property
    def msg(self) -> str:
        return self.kind[4:]

    @property
    def scalar_varint(self) -> bool:
        return self.kind in ("uint32", "uint64", "bool") or self.kind.startswith("enum:")


@dataclass
class Message:
    name: str
    fields: list = field(default_factory=list)

    def by_num(self) -> dict:
        return {f.num: f for f in self.fields}


SCHEMAS: dict[str, Message] = {}
ENUMS: dict[str, dict[int, str]] = {}


def message(name: str, *fields: Field) -> None:
    nums = [f.num for f in fields]
    assert nums == sorted(nums) and len(set(nums)) == len(nums), name
    SCHEMAS[name] = Message(name, list(fields))


# ---------------------------------------------------------------- varints


def enc_varint(n: int) -> bytes:
    if n < 0 or n >= 1 << 64:
        raise ValueError(f"varint out of range: {n}")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def dec_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")
    if n >= 1 << 64:
        raise DecodeError("varint overflows 64 bits")
    return n, pos


# ---------------------------------------------------------------- encoding


def _key(num: int, wire: int) -> bytes:
    return enc_varint((num << 3) | wire)


def _scalar_int(f: Field, v) -> int:
    if f.kind == "bool":
        return 1 if v else 0
    v = int(v)
    limit = 1 << (32 if f.kind == "uint32" or f.kind.startswith("enum:") else 64)
    if not 0 <= v < limit:
        raise ValueError(f"{f.name}: {v} out of range for {f.kind}")
    return v


def _raw(f: Field, v) -> bytes:
    if f.kind == "string":
        return v.encode("utf-8")
    return bytes(v)


def _enc_value(f: Field, v) -> bytes:
    if f.is_msg:
        body = encode(f.msg, v)
        return _key(f.num, 2) + enc_varint(len(body)) + body
    if f.scalar_varint:
        return _key(f.num, 0) + enc_varint(_scalar_int(f, v))
    raw = _raw(f, v)
    return _key(f.num, 2) + enc_varint(len(raw)) + raw


def _is_default(f: Field, v) -> bool:
    if v is None:
        return True
    if f.is_msg:
        return False  # message fields have presence: written when set, even empty
    if f.scalar_varint:
        return _scalar_int(f, v) == 0
    return len(v) == 0


def encode(msg_name: str, value: dict) -> bytes:
    """Canonical encoding of ``value`` (a dict keyed by field name) as message ``msg_name``."""
    schema = SCHEMAS[msg_name]
    known = {f.name for f in schema.fields}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"{msg_name}: unknown fields {sorted(unknown)}")
    groups: dict[str, str] = {}
    out = bytearray()
    for f in schema.fields:
        v = value.get(f.name)
        if f.label == "rep":
            items = v or []
            if not items:
                continue
            if f.scalar_varint:
                packed = b"".join(enc_varint(_scalar_int(f, x)) for x in items)
                out += _key(f.num, 2) + enc_varint(len(packed)) + packed
            else:
                for x in items:
                    out += _enc_value(f, x)
        elif f.label in ("opt", "oneof"):
            if v is None:
                continue
            if f.label == "oneof":
                if f.group in groups:
                    raise ValueError(f"{msg_name}: oneof {f.group} has {groups[f.group]} and {f.name}")
                groups[f.group] = f.name
            out += _enc_value(f, v)
        else:
            if _is_default(f, v):
                continue
            out += _enc_value(f, v)
    return bytes(out)


# ---------------------------------------------------------------- decoding


def _check_size(f: Field, raw: bytes, strict: bool) -> None:
    if not strict:
        return
    if f.kind == "key":
        if len(raw) != 32:
            raise DecodeError(f"{f.name}: a key is 32 bytes, got {len(raw)}")
        if not is_valid_public_key(raw):
            raise DecodeError(f"{f.name}: not a valid public key (SPEC.md §3.1)")
    elif f.kind == "hash" and len(raw) != 32:
        raise DecodeError(f"{f.name}: a hash is 32 bytes, got {len(raw)}")
    elif f.kind == "sig" and len(raw) != 64:
        raise DecodeError(f"{f.name}: a signature is 64 bytes, got {len(raw)}")


def _dec_scalar(f: Field, n: int):
    if f.kind == "bool":
        if n > 1:
            raise DecodeError(f"{f.name}: bool must be 0 or 1")
        return bool(n)
    if (f.kind == "uint32" or f.kind.startswith("enum:")) and n >= 1 << 32:
        raise DecodeError(f"{f.name}: {n} out of range for uint32")
    if f.kind.startswith("enum:"):
        table = ENUMS[f.kind[5:]]
        if n not in table:
            raise DecodeError(f"{f.name}: unknown {f.kind[5:]} code {n}")
    return n


def _dec_len_value(f: Field, raw: bytes, strict: bool, depth: int):
    if f.is_msg:
        return _decode(f.msg, raw, strict, depth + 1)
    if f.kind == "string":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{f.name}: not UTF-8") from None
    _check_size(f, raw, strict)
    return bytes(raw)


def _decode(msg_name: str, buf: bytes, strict: bool, depth: int) -> dict:
    if depth > 32:
        raise DecodeError("nesting too deep")
    schema = SCHEMAS[msg_name]
    by_num = schema.by_num()
    out: dict = {}
    group_seen: dict[str, str] = {}
    pos = 0
    while pos < len(buf):
        key, pos = dec_varint(buf, pos)
        num, wire = key >> 3, key & 7
        f = by_num.get(num)
        if f is None:
            raise DecodeError(f"{msg_name}: unknown field {num}")
        if wire == 0:
            if not f.scalar_varint:
                raise DecodeError(f"{msg_name}.{f.name}: wrong wire type")
            n, pos = dec_varint(buf, pos)
            v = _dec_scalar(f, n)
            if f.label == "rep":
                out.setdefault(f.name, []).append(v)
                continue
        elif wire == 2:
            ln, pos = dec_varint(buf, pos)
            if ln > len(buf) - pos:
                raise DecodeError(f"{msg_name}.{f.name}: length past the end")
            raw = buf[pos:pos + ln]
            pos += ln
            if f.scalar_varint:
                if f.label != "rep":
                    raise DecodeError(f"{msg_name}.{f.name}: wrong wire type")
                p = 0
                items = out.setdefault(f.name, [])
                while p < len(raw):
                    n, p = dec_varint(raw, p)
                    items.append(_dec_scalar(f, n))
                continue
            v = _dec_len_value(f, raw, strict, depth)
            if f.label == "rep":
                out.setdefault(f.name, []).append(v)
                continue
        else:
            raise DecodeError(f"{msg_name}.{f.name}: unsupported wire type {wire}")
        if f.label == "oneof":
            prev = group_seen.get(f.group)
            if prev is not None and prev != f.name:
                if strict:
                    raise DecodeError(f"{msg_name}: two members of oneof {f.group}")
                out.pop(prev, None)
            group_seen[f.group] = f.name
        out[f.name] = v
    for f in schema.fields:
        if f.label == "rep":
            out.setdefault(f.name, [])
        elif f.label in ("opt", "oneof") or f.is_msg:
            out.setdefault(f.name, None)
        elif f.name not in out:
            out[f.name] = b"" if f.kind in ("bytes", "key", "hash", "sig") else (
                "" if f.kind == "string" else (False if f.kind == "bool" else 0))
            if strict and f.kind in ("key", "hash", "sig"):
                raise DecodeError(f"{msg_name}.{f.name}: required {f.kind} is missing")
    return out


def decode(msg_name: str, buf: bytes, strict: bool = True) -> dict:
    """Decode ``buf``; with ``strict`` only the canonical encoding is accepted (SPEC.md §4.2)."""
    buf = bytes(buf)
    value = _decode(msg_name, buf, strict, 0)
    if strict and encode(msg_name, value) != buf:
        raise DecodeError(f"{msg_name}: not the canonical encoding")
    return value


# ---------------------------------------------------------------- JSON views
#
# The RPC's and the vectors' JSON form: bytes as lowercase hex, enums by name, optional fields
# as null, a message that is one ``oneof`` as {"member": value}, and an ``Operation`` as
# {"type": "<member>", ...the member's fields}.

BYTES_KINDS = ("bytes", "key", "hash", "sig")


def _oneof_only(schema: Message) -> bool:
    return bool(schema.fields) and all(f.label == "oneof" for f in schema.fields)


def _value_to_json(f: Field, v):
    if v is None:
        return None
    if f.json_key:
        return {f.json_key: _scalar_to_json(f, v)}
    return _scalar_to_json(f, v)


def _scalar_to_json(f: Field, v):
    if f.is_msg:
        return to_json(f.msg, v)
    if f.kind in BYTES_KINDS:
        return bytes(v).hex()
    if f.kind.startswith("enum:"):
        return ENUMS[f.kind[5:]].get(v, v)
    return v


def to_json(msg_name: str, value: dict):
    schema = SCHEMAS[msg_name]
    if msg_name == "Operation":
        for f in schema.fields:
            if value.get(f.name) is not None:
                return {"type": f.name, **to_json(f.msg, value[f.name])}
        return None
    if _oneof_only(schema):
        for f in schema.fields:
            if value.get(f.name) is not None:
                return {f.name: _value_to_json(f, value[f.name])}
        return None
    out = {}
    for f in schema.fields:
        v = value.get(f.name)
        if f.label == "rep":
            out[f.name] = [_value_to_json(f, x) for x in (v or [])]
        else:
            out[f.name] = _value_to_json(f, v)
    return out


def _value_from_json(f: Field, v):
    if v is None:
        return None
    if f.json_key:
        if not isinstance(v, dict) or set(v) != {f.json_key}:
            raise ValueError(f"{f.name}: expected {{{f.json_key!r}: ...}}")
        v = v[f.json_key]
    if f.is_msg:
        return from_json(f.msg, v)
    if f.kind in BYTES_KINDS:
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        if not isinstance(v, str) or len(v) % 2:
            raise ValueError(f"{f.name}: expected hex")
        return bytes.fromhex(v)
    if f.kind.startswith("enum:"):
        if isinstance(v, str):
            names = {n: c for c, n in ENUMS[f.kind[5:]].items()}
            if v not in names:
                raise ValueError(f"{f.name}: unknown {f.kind[5:]} {v!r}")
            return names[v]
        return int(v)
    if f.kind == "string" and not isinstance(v, str):
        raise ValueError(f"{f.name}: expected a string")
    return v


def from_json(msg_name: str, obj) -> dict:
    """The inverse of ``to_json``; unknown keys are refused."""
    schema = SCHEMAS[msg_name]
    if not isinstance(obj, dict):
        raise ValueError(f"{msg_name}: expected an object")
    if msg_name == "Operation":
        obj = dict(obj)
        kind = obj.pop("type", None)
        f = next((f for f in schema.fields if f.name == kind), None)
        if f is None:
            raise ValueError(f"unknown operation type {kind!r}")
        return {kind: from_json(f.msg, obj)}
    by_name = {f.name: f for f in schema.fields}
    unknown = set(obj) - set(by_name)
    if unknown:
        raise ValueError(f"{msg_name}: unknown fields {sorted(unknown)}")
    out = {}
    for name, v in obj.items():
        f = by_name[name]
        if f.label == "rep":
            out[name] = [_value_from_json(f, x) for x in (v or [])]
        else:
            out[name] = _value_from_json(f, v)
    return out

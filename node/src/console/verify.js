/* dpx console verifier: checks transaction/receipt proof bundles against certified headers
 * in the browser, trusting only the genesis validator set (SPEC.md §2, §3, §4.1, §7, §8, §11).
 * Plain ES2020 classic script: no modules, no dependencies. Defines window.dpxVerify
 * (globalThis.dpxVerify under Node). u64 values are handled as BigInt throughout.
 * Ed25519 (§3.3): rules 1-3 (key validity and subgroup, S < ℓ, R not of small order) are
 * checked here in BigInt arithmetic; rule 4 (the cofactorless equation, R compared by encoding)
 * is WebCrypto's Ed25519 verify. Because A and R are both required here to be canonical and
 * torsion-free, a cofactored or a cofactorless WebCrypto implementation reach the same verdict. */
(function (g) {
  'use strict';
  const te = new TextEncoder();
  const fail = (msg) => { throw new Error(msg); };
  const U64_MAX = (1n << 64n) - 1n;

  // ---------- bytes and numbers ----------
  function hexToBytes(hex, len, what) {
    what = what || 'hex';
    if (typeof hex !== 'string' || hex.length % 2 || !/^[0-9a-f]*$/.test(hex)) fail(what + ': not lowercase hex');
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    if (len !== undefined && out.length !== len) fail(what + ': expected ' + len + ' bytes');
    return out;
  }
  function bytesToHex(b) { let s = ''; for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16); return s; }
  function concat(list) {
    let n = 0; for (const a of list) n += a.length;
    const out = new Uint8Array(n); let o = 0;
    for (const a of list) { out.set(a, o); o += a.length; }
    return out;
  }
  function eq(a, b) { if (a.length !== b.length) return false; let d = 0; for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i]; return d === 0; }
  function cmpBytes(a, b) { for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]; return a.length - b.length; }
  function u64le(n) { const o = new Uint8Array(8); n = BigInt(n); for (let i = 0; i < 8; i++) { o[i] = Number(n & 255n); n >>= 8n; } return o; }
  function u64be(n) { return u64le(n).reverse(); }
  function u32le(n) { return u64le(n).subarray(0, 4); }
  // A JSON u64: a safe-integer number, a decimal string or a BigInt; anything else is refused.
  function u64(v, what) {
    let n;
    if (typeof v === 'bigint') n = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
    else if (typeof v === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(v)) n = BigInt(v);
    else fail((what || 'number') + ': not an exact u64');
    if (n < 0n || n > U64_MAX) fail((what || 'number') + ': out of u64 range');
    return n;
  }
  function obj(v, what) { if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(what + ': not an object'); return v; }
  function arr(v, what, max) { if (!Array.isArray(v)) fail(what + ': not an array'); if (v.length > max) fail(what + ': too many entries'); return v; }
  function bytesIn(v, what) { return v instanceof Uint8Array ? v : hexToBytes(v, undefined, what); }

  // ---------- BLAKE3 (default hash mode, 32-byte output) ----------
  const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  const CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8;
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  function compress(cv, m, counter, len, flags) {
    const s = [cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7], IV[0], IV[1], IV[2], IV[3],
      counter >>> 0, Math.floor(counter / 4294967296) >>> 0, len, flags];
    const G = (a, b, c, d, x, y) => {
      s[a] = (s[a] + s[b] + x) | 0; s[d] = rotr(s[d] ^ s[a], 16);
      s[c] = (s[c] + s[d]) | 0; s[b] = rotr(s[b] ^ s[c], 12);
      s[a] = (s[a] + s[b] + y) | 0; s[d] = rotr(s[d] ^ s[a], 8);
      s[c] = (s[c] + s[d]) | 0; s[b] = rotr(s[b] ^ s[c], 7);
    };
    for (let r = 0; r < 7; r++) {
      G(0, 4, 8, 12, m[0], m[1]); G(1, 5, 9, 13, m[2], m[3]); G(2, 6, 10, 14, m[4], m[5]); G(3, 7, 11, 15, m[6], m[7]);
      G(0, 5, 10, 15, m[8], m[9]); G(1, 6, 11, 12, m[10], m[11]); G(2, 7, 8, 13, m[12], m[13]); G(3, 4, 9, 14, m[14], m[15]);
      m = PERM.map((i) => m[i]);
    }
    const out = new Array(8);
    for (let i = 0; i < 8; i++) out[i] = (s[i] ^ s[i + 8]) >>> 0;
    return out;
  }
  function words(b, off, len) { // 16 little-endian words of a zero-padded 64-byte block
    const w = new Array(16).fill(0);
    for (let i = 0; i < len; i++) w[i >> 2] |= b[off + i] << (8 * (i & 3));
    return w;
  }
  function chunkCv(b, start, end, index, root) {
    let cv = IV, off = start;
    const nblocks = Math.max(1, Math.ceil((end - start) / 64));
    for (let k = 0; k < nblocks; k++, off += 64) {
      const len = Math.min(64, end - off);
      let flags = (k === 0 ? CHUNK_START : 0) | (k === nblocks - 1 ? CHUNK_END | (root ? ROOT : 0) : 0);
      cv = compress(cv, words(b, off, len), index, len, flags);
    }
    return cv;
  }
  // Tree of 1024-byte chunks: the left subtree holds the largest power of two of chunks below n.
  function subtree(b, chunk0, nchunks, root) {
    if (nchunks === 1) return chunkCv(b, chunk0 * 1024, Math.min(b.length, (chunk0 + 1) * 1024), chunk0, root);
    let k = 1; while (k * 2 < nchunks) k *= 2;
    const l = subtree(b, chunk0, k, false), r = subtree(b, chunk0 + k, nchunks - k, false);
    return compress(IV, l.concat(r), 0, 64, PARENT | (root ? ROOT : 0));
  }
  /** blake3(bytes) -> Uint8Array(32). Plain BLAKE3, no key (SPEC §2). */
  function blake3(bytes) {
    if (!(bytes instanceof Uint8Array)) fail('blake3: bytes must be a Uint8Array');
    const cv = subtree(bytes, 0, Math.max(1, Math.ceil(bytes.length / 1024)), true);
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = cv[i >> 2] >>> (8 * (i & 3));
    return out;
  }

  // ---------- §2.1 domain-separated hashes ----------
  /** H(domain, chainId, parts) = blake3(u64le(len)‖domain ‖ u64le(len)‖chain_id ‖ (u64le(len)‖part)*). */
  function H(domain, chainId, parts) {
    const list = [];
    for (const p of [te.encode(String(domain)), te.encode(String(chainId))].concat(parts || [])) {
      if (!(p instanceof Uint8Array)) fail('H: parts must be Uint8Array');
      list.push(u64le(p.length), p);
    }
    return blake3(concat(list));
  }
  const ZERO32 = new Uint8Array(32);

  // ---------- §4.1 canonical protobuf (reader + encoder) ----------
  function readVarint(b, pos) {
    let n = 0n, shift = 0n, i = pos;
    for (;;) {
      if (i >= b.length) fail('protobuf: truncated varint');
      const x = b[i++];
      n |= BigInt(x & 0x7f) << shift; shift += 7n;
      if (!(x & 0x80)) break;
      if (shift >= 70n) fail('protobuf: varint too long');
    }
    if (n > U64_MAX) fail('protobuf: varint overflows u64');
    return [n, i];
  }
  // -> [{num, wt, v}] with v a BigInt (wire type 0) or a Uint8Array (wire type 2).
  function parseFields(b) {
    const out = []; let pos = 0;
    while (pos < b.length) {
      let key; [key, pos] = readVarint(b, pos);
      const num = Number(key >> 3n), wt = Number(key & 7n);
      if (num === 0) fail('protobuf: field number 0');
      if (wt === 0) { let v; [v, pos] = readVarint(b, pos); out.push({ num, wt, v }); }
      else if (wt === 2) {
        let len; [len, pos] = readVarint(b, pos);
        if (len > BigInt(b.length - pos)) fail('protobuf: truncated field');
        out.push({ num, wt, v: b.subarray(pos, pos + Number(len)) }); pos += Number(len);
      } else fail('protobuf: unexpected wire type ' + wt);
    }
    return out;
  }
  function varint(n) {
    n = BigInt(n); const out = [];
    do { let x = Number(n & 0x7fn); n >>= 7n; if (n) x |= 0x80; out.push(x); } while (n);
    return Uint8Array.from(out);
  }
  // Canonical encoding helpers: implicit-presence fields are omitted when zero/empty.
  const pbVarint = (num, n) => (BigInt(n) === 0n ? new Uint8Array(0) : concat([varint(num << 3), varint(n)]));
  const pbBytes = (num, b) => (b.length === 0 ? new Uint8Array(0) : concat([varint((num << 3) | 2), varint(b.length), b]));
  const pbMsg = (num, b) => concat([varint((num << 3) | 2), varint(b.length), b]); // repeated/oneof: always
  function only(fields, allowed, what) { for (const f of fields) if (!allowed[f.num] || allowed[f.num] !== f.wt + 1) fail(what + ': unknown field ' + f.num); }
  const utf8 = (b, what) => { try { return new TextDecoder('utf-8', { fatal: true }).decode(b); } catch (e) { return fail(what + ': not UTF-8'); } };

  // ---------- §3.1 / §3.3 ed25519 key and signature rules (BigInt point arithmetic) ----------
  const P = (1n << 255n) - 19n;
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const mod = (a) => { const r = a % P; return r < 0n ? r + P : r; };
  function pow(b, e) { let r = 1n; b = mod(b); while (e > 0n) { if (e & 1n) r = r * b % P; b = b * b % P; e >>= 1n; } return r; }
  const D = mod(-121665n * pow(121666n, P - 2n));
  const SQRT_M1 = pow(2n, (P - 1n) / 4n);
  function leInt(b) { let n = 0n; for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]); return n; }
  // Decode a canonical point encoding to extended coordinates, or null.
  function decodePoint(b) {
    const sign = b[31] >> 7, y = leInt(b) & ((1n << 255n) - 1n);
    if (y >= P) return null;
    const u = mod(y * y - 1n), v = mod(D * y * y + 1n);
    let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
    const vx2 = mod(v * x * x);
    if (vx2 === mod(-u)) x = mod(x * SQRT_M1); else if (vx2 !== u) return null;
    if (x === 0n && sign) return null;
    if (Number(x & 1n) !== sign) x = P - x;
    return [x, y, 1n, mod(x * y)];
  }
  function add(p, q) { // complete twisted-Edwards addition (a = -1), extended coordinates
    const [X1, Y1, Z1, T1] = p, [X2, Y2, Z2, T2] = q;
    const A = mod((Y1 - X1) * (Y2 - X2)), B = mod((Y1 + X1) * (Y2 + X2)), C = mod(2n * D * T1 * T2), DD = mod(2n * Z1 * Z2);
    const E = B - A, F = DD - C, G = DD + C, Hh = B + A;
    return [mod(E * F), mod(G * Hh), mod(F * G), mod(E * Hh)];
  }
  function mul(p, n) { let r = [0n, 1n, 1n, 0n]; while (n > 0n) { if (n & 1n) r = add(r, p); p = add(p, p); n >>= 1n; } return r; }
  const isIdentity = (p) => p[0] === 0n && p[1] === p[2];
  // Canonical, in the prime-order subgroup, not the identity (so not of small order either).
  function primeOrderPoint(b) { const p = decodePoint(b); return !!p && !isIdentity(p) && isIdentity(mul(p, L)); }
  const keyCache = new Map();
  /** §3.1: is this 32-byte string a valid dpx public key? */
  function isValidKey(key) {
    if (!(key instanceof Uint8Array) || key.length !== 32) return false;
    const h = bytesToHex(key);
    if (!keyCache.has(h)) { if (keyCache.size > 4096) keyCache.clear(); keyCache.set(h, primeOrderPoint(key)); }
    return keyCache.get(h);
  }
  function key32(hex, what) { const k = bytesIn(hex, what); if (k.length !== 32 || !isValidKey(k)) fail(what + ': not a valid ed25519 public key'); return k; }
  /** §3.3: signature sig (64 bytes) by key over the 32-byte digest. Resolves to a boolean. */
  async function verifySignature(key, digest, sig) {
    if (!(key instanceof Uint8Array) || !(digest instanceof Uint8Array) || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
    if (!isValidKey(key)) return false; // rule 1
    if (leInt(sig.subarray(32)) >= L) return false; // rule 2
    // rule 3 (and, since [S]B − [k]A is torsion-free, a necessary condition of rule 4): R canonical, torsion-free, not the identity
    if (!primeOrderPoint(sig.subarray(0, 32))) return false;
    const subtle = g.crypto && g.crypto.subtle;
    if (!subtle) fail('ed25519: WebCrypto (crypto.subtle) is unavailable');
    try { // rule 4
      const k = await subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
      return (await subtle.verify('Ed25519', k, sig, digest)) === true;
    } catch (e) {
      if (e && e.name === 'NotSupportedError') fail('ed25519: this browser lacks WebCrypto Ed25519');
      return false;
    }
  }

  // ---------- §7.1 headers and block ids ----------
  const HEADER_HASHES = ['proposer', 'parent_id', 'parent_certificate_hash', 'tx_root', 'state_root', 'validator_set_hash', 'prev_receipts_hash'];
  function chainIdOk(c) { return typeof c === 'string' && /^[a-z0-9.-]{1,64}$/.test(c); }
  // JSON header (RPC form) -> {chain_id, height, time_ms (BigInt), 32-byte fields (Uint8Array)}.
  function parseHeader(j) {
    obj(j, 'header');
    if (!chainIdOk(j.chain_id)) fail('header: bad chain_id');
    const h = { chain_id: j.chain_id, height: u64(j.height, 'header.height'), time_ms: u64(j.time_ms, 'header.time_ms') };
    for (const f of HEADER_HASHES) h[f] = hexToBytes(j[f], 32, 'header.' + f);
    if (!isValidKey(h.proposer)) fail('header.proposer: not a valid public key');
    return h;
  }
  /** §7.1: canonical protobuf bytes of a header (JSON form or parsed). */
  function encodeHeader(j) {
    const h = j.proposer instanceof Uint8Array ? j : parseHeader(j);
    return concat([pbBytes(1, te.encode(h.chain_id)), pbVarint(2, h.height), pbVarint(3, h.time_ms)]
      .concat(HEADER_HASHES.map((f, i) => pbBytes(4 + i, h[f]))));
  }
  /** §7.1: block id = H("dpx/header/v1", header.chain_id, encode(Header)). */
  function blockId(j) {
    const h = j.proposer instanceof Uint8Array ? j : parseHeader(j);
    return H('dpx/header/v1', h.chain_id, [encodeHeader(h)]);
  }

  // ---------- §7.3 votes ----------
  /** §7.3: vote sign bytes; kind 1 prevote, 2 precommit; valueId null for nil. */
  function voteSignBytes(kind, height, round, valueId) {
    const r = u64(round, 'round'); if (r > 0xffffffffn) fail('round: exceeds u32');
    return concat([Uint8Array.of(kind), u64le(u64(height, 'height')), u32le(r), valueId ? concat([Uint8Array.of(1), valueId]) : Uint8Array.of(0)]);
  }

  // ---------- §7.4 validator sets ----------
  // [{key: hex|bytes, power}] -> [{key: Uint8Array, power: BigInt}], checking §4.3's limits.
  function parseValidators(list, sort) {
    arr(list, 'validators', 1024);
    if (list.length === 0) fail('validators: empty set');
    let total = 0n;
    const vs = list.map((v, i) => {
      obj(v, 'validators[' + i + ']');
      const p = u64(v.power, 'validators[' + i + '].power');
      if (p === 0n) fail('validators: power 0');
      total += p;
      return { key: key32(v.key, 'validators[' + i + '].key'), power: p };
    });
    if (total > (1n << 60n)) fail('validators: total power above 2^60');
    if (sort) vs.sort((a, b) => cmpBytes(a.key, b.key));
    for (let i = 1; i < vs.length; i++) if (cmpBytes(vs[i - 1].key, vs[i].key) === 0) fail('validators: duplicate key');
    return vs;
  }
  /** §7.4: H("dpx/validator-set/v1", chain_id, u64le(n), key₀, u64le(power₀), …) over the list as given. */
  function setHash(chainId, vs) {
    const parts = [u64le(vs.length)];
    for (const v of vs) parts.push(v.key, u64le(v.power));
    return H('dpx/validator-set/v1', chainId, parts);
  }
  /** §7.4 for the page: the set hash of [{key: hex, power}] sorted by key bytes, as hex. */
  function validatorSetHash(chainId, validators) { return bytesToHex(setHash(chainId, parseValidators(validators, true))); }

  // ---------- §7.5 certificates ----------
  /** §7.5: decode a canonical Certificate (hex or bytes) -> {height, round, value_id, signatures:[{validator, signature}]}. */
  function decodeCertificate(input) {
    const b = bytesIn(input, 'certificate');
    if (b.length > 81984) fail('certificate: too large');
    const c = { height: 0n, round: 0n, value_id: new Uint8Array(0), signatures: [] };
    const fs = parseFields(b);
    only(fs, { 1: 1, 2: 1, 3: 3, 4: 3 }, 'certificate');
    for (const f of fs) {
      if (f.num === 1) c.height = f.v;
      else if (f.num === 2) c.round = f.v;
      else if (f.num === 3) c.value_id = f.v;
      else {
        const s = { validator: 0n, signature: new Uint8Array(0) }, sf = parseFields(f.v);
        only(sf, { 1: 1, 2: 3 }, 'certificate signature');
        for (const x of sf) { if (x.num === 1) s.validator = x.v; else s.signature = x.v; }
        if (s.validator > 0xffffffffn) fail('certificate: validator index exceeds u32');
        if (s.signature.length !== 64) fail('certificate: signature is not 64 bytes');
        c.signatures.push(s);
      }
    }
    if (c.round > 0xffffffffn) fail('certificate: round exceeds u32');
    if (c.value_id.length !== 32) fail('certificate: value_id is not 32 bytes');
    if (c.signatures.length > 1024) fail('certificate: more than 1024 signatures');
    if (!eq(encodeCertificate(c), b)) fail('certificate: not canonical');
    return c;
  }
  function encodeCertificate(c) {
    return concat([pbVarint(1, c.height), pbVarint(2, c.round), pbBytes(3, c.value_id)]
      .concat(c.signatures.map((s) => pbMsg(4, concat([pbVarint(1, s.validator), pbBytes(2, s.signature)])))));
  }
  /** §7.5: check a certificate against a validator set ([{key, power}], index order). When height / blockId
   * are given the certificate must be for them. Resolves to {signed, total} (BigInt) or throws. */
  async function verifyCertificate(chainId, cert, validators, height, blockIdBytes) {
    const c = cert && cert.signatures ? cert : decodeCertificate(cert);
    const vs = validators.length && validators[0].key instanceof Uint8Array ? validators : parseValidators(validators, false);
    if (height !== undefined && c.height !== u64(height)) fail('certificate: height ' + c.height + ' is not the header height ' + height);
    if (blockIdBytes && !eq(c.value_id, blockIdBytes)) fail('certificate: value_id is not the block id of the header');
    let total = 0n, signed = 0n, last = -1n;
    for (const v of vs) total += v.power;
    const digests = [];
    for (const s of c.signatures) {
      if (s.validator <= last) fail('certificate: signer indices not strictly increasing');
      if (s.validator >= BigInt(vs.length)) fail('certificate: signer ' + s.validator + ' is not a member');
      last = s.validator;
      signed += vs[Number(s.validator)].power;
    }
    const quorum = total * 2n / 3n + 1n;
    if (signed < quorum) fail('certificate: no quorum (' + signed + ' of ' + total + ', need ' + quorum + ')');
    const digest = H('dpx/vote/v1', chainId, [voteSignBytes(2, c.height, c.round, c.value_id)]);
    for (const s of c.signatures) digests.push(verifySignature(vs[Number(s.validator)].key, digest, s.signature));
    const ok = await Promise.all(digests);
    ok.forEach((x, i) => { if (!x) fail('certificate: signature of validator ' + c.signatures[i].validator + ' does not verify'); });
    return { signed, total };
  }

  // ---------- §7.2 transaction and receipt trees ----------
  const leafDomain = { tx: 'dpx/merkle/leaf/v1', receipt: 'dpx/receipts/v1' };
  /** §7.2: leaf hash of an item; kind 'tx' or 'receipt'. */
  function merkleLeaf(kind, item) { return H(leafDomain[kind] || fail('merkle: unknown leaf kind'), '', [item]); }
  const node = (l, r) => H('dpx/merkle/node/v1', '', [l, r]);
  /** §7.2: root of a list of items (RFC 9162 shape). */
  function merkleRoot(kind, items) {
    const rec = (xs) => { if (xs.length === 0) return ZERO32; if (xs.length === 1) return merkleLeaf(kind, xs[0]); let k = 1; while (k * 2 < xs.length) k *= 2; return node(rec(xs.slice(0, k)), rec(xs.slice(k))); };
    return rec(items);
  }
  /** §7.2: RFC 9162 §2.1.3.2 inclusion check of leaf hash `leaf` with proof {index, leaf_count, siblings}. */
  function verifyMerkleProof(proof, leaf, root) {
    obj(proof, 'merkle proof');
    const index = u64(proof.index, 'proof.index'), count = u64(proof.leaf_count, 'proof.leaf_count');
    const sibs = arr(proof.siblings, 'proof.siblings', 64).map((s, i) => bytesIn(s, 'proof.siblings[' + i + ']'));
    if (sibs.some((s) => s.length !== 32)) fail('merkle proof: sibling is not 32 bytes');
    if (index >= count) return false;
    let fn = index, sn = count - 1n, r = leaf;
    for (const p of sibs) {
      if (sn === 0n) return false;
      if ((fn & 1n) || fn === sn) { r = node(p, r); while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; } }
      else r = node(r, p);
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n && eq(r, root);
  }

  // ---------- §8.2-8.4 state proofs ----------
  const PLACEHOLDER = te.encode('SPARSE_MERKLE_PLACEHOLDER_HASH__');
  const leafHash = (kh, vh) => blake3(concat([te.encode('JMT::LeafNode'), kh, vh]));
  const internalHash = (l, r) => blake3(concat([te.encode('JMT::IntrnalNode'), l, r]));
  const bit = (kh, i) => (kh[i >> 3] >> (7 - (i & 7))) & 1;
  function proofLeaf(l, what) { obj(l, what); return [hexToBytes(l.key_hash, 32, what + '.key_hash'), hexToBytes(l.value_hash, 32, what + '.value_hash')]; }
  function siblingHash(s, i) {
    const what = 'proof.siblings[' + i + ']';
    if (s === 'null' || s === null) return PLACEHOLDER;
    obj(s, what);
    if (s.internal) { obj(s.internal, what); return internalHash(hexToBytes(s.internal.left, 32, what), hexToBytes(s.internal.right, 32, what)); }
    if (s.leaf) { const [k, v] = proofLeaf(s.leaf, what); return leafHash(k, v); }
    return fail(what + ': unknown sibling form');
  }
  /** §8.4: does the JSON StateProof prove `value` (Uint8Array, or null for absence) at `key` under `root`? */
  function verifyStateProof(root, key, value, proof) {
    obj(proof, 'state proof');
    const sibs = arr(proof.siblings, 'proof.siblings', 256), n = sibs.length, kh = blake3(key);
    const leaf = proof.leaf == null ? null : proofLeaf(proof.leaf, 'proof.leaf');
    if (value != null) {
      if (!leaf || !eq(leaf[0], kh) || !eq(leaf[1], blake3(value))) return false;
    } else if (leaf) {
      if (eq(leaf[0], kh)) return false;
      for (let i = 0; i < n; i++) if (bit(leaf[0], i) !== bit(kh, i)) return false;
    }
    let h = leaf ? leafHash(leaf[0], leaf[1]) : PLACEHOLDER;
    for (let i = 0; i < n; i++) {
      const s = siblingHash(sibs[i], i);
      h = bit(kh, n - 1 - i) ? internalHash(s, h) : internalHash(h, s);
    }
    return eq(h, root);
  }
  /** §8.3: protobuf StateProof -> its JSON form. */
  function decodeStateProof(input) {
    const hx = (b) => { if (b.length !== 32) fail('state proof: hash is not 32 bytes'); return bytesToHex(b); };
    const pl = (b) => { const l = { key_hash: '', value_hash: '' }; const fs = parseFields(b); only(fs, { 1: 3, 2: 3 }, 'proof leaf'); for (const f of fs) l[f.num === 1 ? 'key_hash' : 'value_hash'] = hx(f.v); return l; };
    const out = { leaf: null, siblings: [] };
    const fs = parseFields(bytesIn(input, 'state proof'));
    only(fs, { 1: 3, 2: 3 }, 'state proof');
    for (const f of fs) {
      if (f.num === 1) { out.leaf = pl(f.v); continue; }
      const sf = parseFields(f.v);
      if (sf.length !== 1) fail('state proof: sibling must set exactly one node');
      const s = sf[0];
      if (s.num === 1 && s.wt === 0) out.siblings.push('null');
      else if (s.num === 2 && s.wt === 2) { const i = { left: '', right: '' }; const xs = parseFields(s.v); only(xs, { 1: 3, 2: 3 }, 'proof internal'); for (const x of xs) i[x.num === 1 ? 'left' : 'right'] = hx(x.v); out.siblings.push({ internal: i }); }
      else if (s.num === 3 && s.wt === 2) out.siblings.push({ leaf: pl(s.v) });
      else fail('state proof: unknown sibling');
    }
    if (out.siblings.length > 256) fail('state proof: more than 256 siblings');
    return out;
  }
  /** contracts ValidatorSet protobuf -> [{key, power, name}] (sorted by key), canonical only. */
  function decodeValidatorSet(input) {
    const b = bytesIn(input, 'validator set'), vs = [];
    const fs = parseFields(b); only(fs, { 1: 3 }, 'validator set');
    for (const f of fs) {
      const v = { key: new Uint8Array(0), power: 0n, name: '' }, xs = parseFields(f.v);
      only(xs, { 1: 3, 2: 1, 3: 3 }, 'validator');
      for (const x of xs) { if (x.num === 1) v.key = x.v; else if (x.num === 2) v.power = x.v; else v.name = utf8(x.v, 'validator.name'); }
      vs.push(v);
    }
    const enc = concat(vs.map((v) => pbMsg(1, concat([pbBytes(1, v.key), pbVarint(2, v.power), pbBytes(3, te.encode(v.name))]))));
    if (!eq(enc, b)) fail('validator set: not canonical');
    const parsed = parseValidators(vs, true);
    return parsed.map((v) => ({ key: v.key, power: v.power, name: vs.find((w) => eq(w.key, v.key)).name }));
  }

  // ---------- §11.3 the validator-set history ----------
  /** §11.3: walk `history` from the genesis set up to height H; resolves to the set in force ([{key, power}]). */
  async function verifyHistory(genesisValidators, chainId, history, H) {
    if (!chainIdOk(chainId)) fail('chain id: invalid');
    let S, last = 1n;
    try { S = parseValidators(genesisValidators, true); } catch (e) { fail('genesis ' + e.message); }
    const top = u64(H, 'history height');
    arr(history == null ? [] : history, 'validator_history', 4096);
    for (const [i, ho] of (history || []).entries()) {
      const w = 'validator_history[' + i + ']';
      obj(ho, w);
      const e = u64(ho.effective_height, w + '.effective_height');
      if (!(last < e && e <= top)) fail(w + ': effective_height out of order or beyond the height proved');
      const h = parseHeader(ho.header);
      if (h.height !== e - 1n) fail(w + ': header height is not effective_height - 1');
      if (h.chain_id !== chainId) fail(w + ': header chain_id is not the genesis chain id');
      if (!eq(h.validator_set_hash, setHash(chainId, S))) fail(w + ': header validator_set_hash is not the set in force');
      try { await verifyCertificate(chainId, ho.certificate, S, h.height, blockId(h)); } catch (err) { fail(w + ': ' + err.message); }
      const value = hexToBytes(ho.value, undefined, w + '.value');
      if (!verifyStateProof(h.state_root, concat([te.encode('valupdate/'), u64be(e)]), value, ho.proof)) fail(w + ': state proof of the new set does not verify');
      S = decodeValidatorSet(value).map((v) => ({ key: v.key, power: v.power }));
      last = e;
    }
    return S;
  }

  // §11.1 step 2-3 / §11.2 step 2: a certified header {header, certificate, validators} against the walked set.
  async function checkCertifiedHeader(ch, what, chainId, genesisValidators, history, height) {
    obj(ch, what);
    const h = parseHeader(ch.header);
    if (h.chain_id !== chainId) fail(what + ': header chain_id is not the genesis chain id');
    if (h.height !== height) fail(what + ': header height is not ' + height);
    let S;
    try { S = await verifyHistory(genesisValidators, chainId, history, height); } catch (e) { fail(what + ': ' + e.message); }
    const vs = parseValidators(ch.validators, false);
    const vh = setHash(chainId, vs);
    if (!eq(vh, setHash(chainId, S))) fail(what + ': validators are not the set the history leads to');
    if (!eq(vh, h.validator_set_hash)) fail(what + ': validators do not hash to header.validator_set_hash');
    const id = blockId(h);
    let p;
    try { p = await verifyCertificate(chainId, ch.certificate, vs, height, id); } catch (e) { fail(what + ': ' + e.message); }
    return { header: h, id, power: [p.signed, p.total] };
  }
  function genesisSet(g0) { return Array.isArray(g0) ? g0 : obj(obj(g0, 'genesis').app, 'genesis.app').validators; }

  /** §11.2: verify a transaction bundle against the genesis validators ([{key, power}] or a genesis file).
   * Resolves to {ok, height, index, txHash, blockPower: [signed, total], receiptPower: [signed, total] | null}
   * (BigInt numbers); throws an Error naming the failed check. */
  async function verifyTxBundle(bundle, genesisValidators, chainId) {
    const gv = genesisSet(genesisValidators);
    obj(bundle, 'bundle');
    if (!chainIdOk(chainId) || bundle.chain_id !== chainId) fail('chain_id: bundle is not for the genesis chain');
    const tx = hexToBytes(bundle.tx, undefined, 'tx');
    if (!eq(blake3(tx), hexToBytes(bundle.tx_hash, 32, 'tx_hash'))) fail('tx_hash: is not blake3(tx)');
    const height = u64(bundle.height, 'height'), index = u64(bundle.index, 'index');
    if (height === 0n || height === U64_MAX) fail('height: out of range');
    obj(bundle.tx_proof, 'tx_proof');
    if (u64(bundle.tx_proof.index, 'tx_proof.index') !== index) fail('tx_proof.index: is not the bundle index');
    const history = bundle.validator_history == null ? [] : arr(bundle.validator_history, 'validator_history', 4096);
    const rc = bundle.receipt == null ? null : obj(bundle.receipt, 'receipt');
    // The block's own check walks only the handoffs in force at `height` when a receipt (next header) is carried.
    const blockHist = rc ? history.filter((x, i) => u64(obj(x, 'validator_history[' + i + ']').effective_height, 'effective_height') <= height) : history;
    const blk = await checkCertifiedHeader(bundle.block, 'block', chainId, gv, blockHist, height);
    if (!verifyMerkleProof(bundle.tx_proof, merkleLeaf('tx', tx), blk.header.tx_root)) fail('tx_proof: does not verify against header.tx_root');
    let receiptPower = null;
    if (rc) {
      obj(rc.next, 'receipt.next'); obj(rc.next.header, 'receipt.next.header');
      if (u64(rc.next.header.height, 'next.header.height') !== height + 1n) fail('receipt.next: header height is not height + 1');
      if (!eq(hexToBytes(rc.next.header.parent_id, 32, 'next.header.parent_id'), blk.id)) fail('receipt.next: parent_id is not the block id');
      obj(rc.proof, 'receipt.proof');
      if (u64(rc.proof.index, 'receipt.proof.index') !== index) fail('receipt.proof.index: is not the bundle index');
      if (u64(rc.proof.leaf_count, 'receipt.proof.leaf_count') !== u64(bundle.tx_proof.leaf_count, 'tx_proof.leaf_count')) fail('receipt.proof.leaf_count: differs from tx_proof.leaf_count');
      const next = await checkCertifiedHeader(rc.next, 'receipt.next', chainId, gv, history, height + 1n);
      const receipt = hexToBytes(rc.receipt, undefined, 'receipt.receipt');
      if (!verifyMerkleProof(rc.proof, merkleLeaf('receipt', receipt), next.header.prev_receipts_hash)) fail('receipt.proof: does not verify against next.header.prev_receipts_hash');
      receiptPower = next.power;
    }
    return { ok: true, height, index, txHash: bundle.tx_hash, blockPower: blk.power, receiptPower, receiptPending: rc ? null : (typeof bundle.receipt_pending === 'string' ? bundle.receipt_pending : 'receipt not certified yet') };
  }

  /** §11.1: verify a state-value bundle. Resolves to {ok, version, key, value (hex|null), power: [signed, total]}. */
  async function verifyStateBundle(bundle, genesisValidators, chainId) {
    const gv = genesisSet(genesisValidators);
    obj(bundle, 'bundle');
    if (!chainIdOk(chainId) || bundle.chain_id !== chainId) fail('chain_id: bundle is not for the genesis chain');
    const version = u64(bundle.version, 'version');
    if (version === U64_MAX) fail('version: out of range');
    const history = bundle.validator_history == null ? [] : bundle.validator_history;
    const c = await checkCertifiedHeader(bundle, 'bundle', chainId, gv, history, version + 1n);
    const key = hexToBytes(bundle.key, undefined, 'key');
    const value = bundle.value == null ? null : hexToBytes(bundle.value, undefined, 'value');
    if (!verifyStateProof(c.header.state_root, key, value, bundle.proof)) fail('proof: state proof does not verify against header.state_root');
    return { ok: true, version, key: bundle.key, value: bundle.value == null ? null : bundle.value, power: c.power };
  }

  // Every entry point reports failures as Error objects, whatever the input.
  const safe = (f) => function () {
    try { const r = f.apply(null, arguments); return r && typeof r.then === 'function' ? r.catch((e) => { throw e instanceof Error ? e : new Error(String(e)); }) : r; }
    catch (e) { throw e instanceof Error ? e : new Error(String(e)); }
  };
  const api = {
    blake3, H, hexToBytes, bytesToHex, encodeHeader, blockId, voteSignBytes, validatorSetHash,
    decodeCertificate, verifyCertificate, verifySignature, isValidKey, merkleLeaf, merkleRoot,
    verifyMerkleProof, verifyStateProof, decodeStateProof, decodeValidatorSet, verifyHistory,
    verifyTxBundle, verifyStateBundle,
  };
  for (const k of Object.keys(api)) api[k] = safe(api[k]);
  g.dpxVerify = Object.freeze(api);
})(typeof window !== 'undefined' ? window : globalThis);

// Checks node/src/console/verify.js against spec/vectors/*.json (SPEC.md §12).
// Run: node node/src/console/verify_test.mjs (from anywhere).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
vm.runInThisContext(readFileSync(join(here, 'verify.js'), 'utf8'), { filename: 'verify.js' });
const V = globalThis.dpxVerify;
const vec = (name) => JSON.parse(readFileSync(join(root, 'spec', 'vectors', name + '.json'), 'utf8'));
const hex = V.bytesToHex, bytes = (h) => V.hexToBytes(h);
const clone = (x) => JSON.parse(JSON.stringify(x));

let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) passed++;
  else { failed++; console.log('FAIL ' + name + (detail ? ': ' + detail : '')); }
}
async function accepts(name, fn) {
  try { await fn(); check(name, true); } catch (e) { check(name, false, e && e.message); }
}
async function refuses(name, fn, needle) {
  try { await fn(); check(name + ' (should be refused)', false, 'accepted'); } catch (e) {
    const ok = e instanceof Error && (!needle || e.message.includes(needle));
    check(name, ok, e instanceof Error ? 'wrong error: ' + e.message : 'non-Error thrown');
    if (process.env.VERBOSE) console.log('  refused ' + name + ': ' + e.message);
  }
}

// §2 hashing
{
  const v = vec('hashing');
  for (const c of v.cases) {
    const parts = c.parts.map(bytes);
    check('H ' + c.name, hex(V.H(c.domain, c.chain_id, parts)) === c.digest);
    check('H preimage blake3 ' + c.name, hex(V.blake3(bytes(c.preimage))) === c.digest);
  }
  for (const c of v.plain) check('blake3 ' + c.message.slice(0, 16), hex(V.blake3(bytes(c.message))) === c.blake3);
  // multi-chunk BLAKE3: official test-vector input (i mod 251) at sizes around chunk boundaries
  const known = { 0: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    1024: '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7',
    1025: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444',
    2048: 'e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a',
    3072: 'b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2',
    5120: '9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833',
    31744: '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47' };
  for (const [n, want] of Object.entries(known)) {
    const input = Uint8Array.from({ length: Number(n) }, (_, i) => i % 251);
    check('blake3 official ' + n + ' bytes', hex(V.blake3(input)) === want);
  }
}

// §3 keys and signatures
{
  const k = vec('keys');
  const valid = Array.isArray(k.valid) ? k.valid : [k.valid];
  for (const c of valid) check('valid key ' + c.public_key.slice(0, 8), V.isValidKey(bytes(c.public_key)));
  for (const c of k.invalid) check('invalid key ' + c.name, !V.isValidKey(bytes(c.public_key)));
  const s = vec('signatures');
  for (const c of s.valid) {
    const d = V.H(c.domain, c.chain_id, [bytes(c.message)]);
    check('signature digest ' + c.domain, hex(d) === c.digest);
    check('valid signature ' + c.domain, await V.verifySignature(bytes(c.public_key), d, bytes(c.signature)));
  }
  for (const c of s.invalid) check('invalid signature ' + c.name, !(await V.verifySignature(bytes(c.public_key), bytes(c.digest), bytes(c.signature))));
}

// §7.1-7.2 blocks
{
  const b = vec('blocks');
  for (const c of b.headers) {
    check('header bytes h' + c.header.height, hex(V.encodeHeader(c.header)) === c.header_bytes);
    check('block id h' + c.header.height, hex(V.blockId(c.header)) === c.block_id);
  }
  for (const t of b.trees) {
    const items = t.items.map(bytes), n = items.length;
    check('tx leaves n=' + n, t.leaf_hashes.every((h, i) => hex(V.merkleLeaf('tx', items[i])) === h));
    check('receipt leaves n=' + n, t.receipt_leaf_hashes.every((h, i) => hex(V.merkleLeaf('receipt', items[i])) === h));
    check('tx root n=' + n, hex(V.merkleRoot('tx', items)) === t.tx_root);
    check('receipt root n=' + n, hex(V.merkleRoot('receipt', items)) === t.receipts_root);
    for (const p of t.proofs) {
      const proof = { index: p.index, leaf_count: n, siblings: p.siblings };
      check('tx proof n=' + n + ' i=' + p.index, V.verifyMerkleProof(proof, bytes(t.leaf_hashes[p.index]), bytes(t.tx_root)));
      check('tx proof wrong index n=' + n + ' i=' + p.index, n < 2 || !V.verifyMerkleProof({ ...proof, index: (p.index + 1) % n }, bytes(t.leaf_hashes[p.index]), bytes(t.tx_root)));
    }
  }
}

// §7.3-7.5 consensus
{
  const c = vec('consensus');
  check('validator set hash', V.validatorSetHash(c.chain_id, c.validators) === c.validator_set_hash.hash);
  check('validator set hash (unsorted input)', V.validatorSetHash(c.chain_id, [...c.validators].reverse()) === c.validator_set_hash.hash);
  check('consensus header id', hex(V.blockId(c.header.header)) === c.header.block_id);
  for (const v of c.votes) {
    const kind = v.vote.kind === 'Prevote' ? 1 : 2;
    const sb = V.voteSignBytes(kind, v.vote.height, v.vote.round, v.vote.value_id ? bytes(v.vote.value_id) : null);
    check('vote sign bytes ' + v.vote.kind, hex(sb) === v.sign_bytes);
    check('vote digest ' + v.vote.kind, hex(V.H('dpx/vote/v1', c.chain_id, [sb])) === v.digest);
    const key = bytes(c.validators[v.vote.validator].key);
    check('vote signature ' + v.vote.kind, await V.verifySignature(key, bytes(v.digest), bytes(v.signature)));
  }
  for (const x of c.certificates) {
    check('certificate blake3 ' + x.name, hex(V.blake3(bytes(x.certificate_bytes))) === x.blake3);
    const run = () => V.verifyCertificate(c.chain_id, x.certificate_bytes, c.validators, c.header.header.height, bytes(c.header.block_id));
    if (x.valid) await accepts('certificate ' + x.name, run); else await refuses('certificate ' + x.name, run);
  }
  const good = c.certificates.find((x) => x.valid);
  await refuses('certificate for another height', () => V.verifyCertificate(c.chain_id, good.certificate_bytes, c.validators, 3, bytes(c.header.block_id)));
  await refuses('certificate non-canonical (trailing field)', () => V.verifyCertificate(c.chain_id, good.certificate_bytes + '0800', c.validators));
  await refuses('certificate truncated', () => V.verifyCertificate(c.chain_id, good.certificate_bytes.slice(0, 40), c.validators));
  await refuses('certificate bad hex', () => V.verifyCertificate(c.chain_id, 'zz', c.validators));
  await refuses('certificate other chain', () => V.verifyCertificate('other-chain', good.certificate_bytes, c.validators));
}

// §8 state tree
{
  const s = vec('state_tree');
  for (const p of s.proofs) {
    const root = bytes(s.root), key = bytes(p.key), value = p.value == null ? null : bytes(p.value);
    check('state proof ' + p.kind, V.verifyStateProof(root, key, value, p.proof));
    check('state proof protobuf ' + p.kind, JSON.stringify(V.decodeStateProof(p.proof_protobuf)) === JSON.stringify(p.proof));
    check('state proof from protobuf ' + p.kind, V.verifyStateProof(root, key, value, V.decodeStateProof(p.proof_protobuf)));
    if (value) {
      check('state proof wrong value ' + p.kind, !V.verifyStateProof(root, key, Uint8Array.of(...value, 1), p.proof));
      check('state proof claims absence ' + p.kind, !V.verifyStateProof(root, key, null, p.proof));
    } else check('state proof claims a value ' + p.kind, !V.verifyStateProof(root, key, Uint8Array.of(1), p.proof));
    check('state proof other root ' + p.kind, !V.verifyStateProof(bytes(s.empty_root), key, value, p.proof));
  }
}

// §11.2 transaction bundles
{
  const t = vec('tx_proof_bundle');
  const gv = t.genesis.app.validators, cid = t.genesis.chain_id;
  await accepts('tx bundle', async () => {
    const r = await V.verifyTxBundle(t.bundle, gv, cid);
    if (!r.ok || r.height !== BigInt(t.bundle.height) || r.index !== BigInt(t.bundle.index) || !r.receiptPower) throw new Error('bad result ' + JSON.stringify(r, (k, x) => typeof x === 'bigint' ? String(x) : x));
  });
  await accepts('tx bundle (genesis file form)', () => V.verifyTxBundle(t.bundle, t.genesis, cid));
  await accepts('tx bundle pending', async () => {
    const r = await V.verifyTxBundle(t.pending, gv, cid);
    if (r.receiptPower !== null) throw new Error('pending bundle reported a receipt');
  });
  for (const x of t.tampered) await refuses('tx bundle tampered: ' + x.what, () => V.verifyTxBundle(x.bundle, gv, cid));
  // further hostile edits
  const edits = {
    'other chain id': (b) => { b.chain_id = 'other'; },
    'height mismatch': (b) => { b.height = 2; },
    'index mismatch': (b) => { b.index = 2; },
    'receipt index mismatch': (b) => { b.receipt.proof.index = 2; },
    'receipt leaf_count mismatch': (b) => { b.receipt.proof.leaf_count = 6; },
    'next parent_id changed': (b) => { b.receipt.next.header.parent_id = '00'.repeat(32); },
    'unsafe integer height': (b) => { b.height = 2 ** 60; },
    'negative height': (b) => { b.height = -1; },
    'float index': (b) => { b.index = 3.5; },
    'validators removed': (b) => { b.block.validators = b.block.validators.slice(1); },
    'validator power raised': (b) => { b.block.validators[0].power = 1000; },
    'bad hex tx': (b) => { b.tx = 'xyz'; },
    'header missing': (b) => { delete b.block.header; },
    'siblings not an array': (b) => { b.tx_proof.siblings = 'abc'; },
    'history with junk': (b) => { b.validator_history = [42]; },
    'certificate truncated': (b) => { b.block.certificate = b.block.certificate.slice(0, 50); },
    'receipt next swapped with block': (b) => { b.receipt.next = clone(b.block); },
  };
  for (const [what, edit] of Object.entries(edits)) { const b = clone(t.bundle); edit(b); await refuses('tx bundle edited: ' + what, () => V.verifyTxBundle(b, gv, cid)); }
  for (const junk of [null, 42, 'x', [], { chain_id: cid }]) await refuses('tx bundle junk ' + JSON.stringify(junk), () => V.verifyTxBundle(junk, gv, cid));
  await refuses('tx bundle other genesis chain', () => V.verifyTxBundle(t.bundle, gv, 'other'));
  await refuses('tx bundle junk genesis validators', () => V.verifyTxBundle(t.bundle, [{ key: 'ab', power: 1 }], cid));
  await refuses('tx bundle genesis not an array', () => V.verifyTxBundle(t.bundle, 'nope', cid));
  // §11.2 step 2 with a history: a handoff after the last header carried must be refused.
  const hist = vec('proof_bundle_history').bundle.validator_history; // effective_height 4
  await refuses('pending bundle with a handoff after its height', () => V.verifyTxBundle({ ...clone(t.pending), validator_history: hist }, gv, cid), 'effective_height');
  await refuses('bundle with receipt, handoff after height + 1', () => V.verifyTxBundle({ ...clone(t.bundle), validator_history: hist }, gv, cid), 'receipt.next');
  // Random single-character edits: every outcome is an accept or an Error, never a hang or a non-Error.
  let seed = 12345; const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const text = JSON.stringify(t.bundle); let weird = 0;
  for (let i = 0; i < 150; i++) {
    const pos = rnd(text.length), ch = '0123456789abcdef"{}[],:-'[rnd(24)];
    let b; try { b = JSON.parse(text.slice(0, pos) + ch + text.slice(pos + 1)); } catch (e) { continue; }
    try { await V.verifyTxBundle(b, gv, cid); } catch (e) { if (!(e instanceof Error)) weird++; }
  }
  check('random edits throw only Errors', weird === 0);
}

// §11.1 state bundles (no history)
{
  const p = vec('proof_bundle');
  const gv = p.genesis.app.validators, cid = p.genesis.chain_id;
  await accepts('state bundle', () => V.verifyStateBundle(p.bundle, gv, cid));
  for (const x of p.tampered) await refuses('state bundle tampered: ' + x.what, () => V.verifyStateBundle(x.bundle, gv, cid));
}

// §11.3 validator-set history
{
  const p = vec('proof_bundle_history');
  const gv = p.genesis.app.validators, cid = p.genesis.chain_id, b = p.bundle;
  const H = b.version + 1;
  await accepts('history walk', async () => {
    const S = await V.verifyHistory(gv, cid, b.validator_history, H);
    if (S.length !== b.validators.length) throw new Error('walk led to a set of ' + S.length);
    if (V.validatorSetHash(cid, S.map((v) => ({ key: hex(v.key), power: v.power }))) !== b.header.validator_set_hash) throw new Error('walked set hash mismatch');
  });
  await accepts('state bundle with history', () => V.verifyStateBundle(b, gv, cid));
  await refuses('history walk beyond height', () => V.verifyHistory(gv, cid, b.validator_history, b.validator_history[0].effective_height - 1));
  for (const x of p.tampered) {
    await refuses('state bundle with history tampered: ' + x.what, () => V.verifyStateBundle(x.bundle, gv, cid));
    if ((x.bundle.validator_history || []).length) await refuses('history tampered: ' + x.what, () => V.verifyHistory(gv, cid, x.bundle.validator_history, H));
  }
  const vs = V.decodeValidatorSet(b.validator_history[0].value);
  check('decode ValidatorSet', vs.length === 5 && vs.some((v) => v.name === 'Newcomer'));
  await refuses('decode ValidatorSet truncated', async () => V.decodeValidatorSet(b.validator_history[0].value.slice(0, 30)));
}

console.log(`${passed} checks passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

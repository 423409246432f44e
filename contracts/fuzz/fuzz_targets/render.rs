//! Any stored value under any key prefix renders to JSON or to nothing, never a panic; so does
//! any key under a prefix whose view reads the key; and so does any receipt.
#![no_main]

use dpx_contracts::{MemState, Receipt, keys, render, render_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else { return };
    // Every key or prefix `render` has a view for; the first 21 in the order the seeds
    // (tests/fuzz_seeds.rs) were first written with.
    let prefixes: [&[u8]; 35] = [
        keys::PREFIX_PARTICIPANT,
        keys::PREFIX_PRODUCT,
        keys::PREFIX_ORDER,
        keys::PREFIX_GRANT,
        keys::PREFIX_PROPOSAL,
        keys::PREFIX_ATTESTATION,
        keys::POLICY_CURRENT,
        keys::VALIDATORS,
        keys::AGENCIES,
        keys::PREFIX_DEMAND,
        keys::PREFIX_SUBJECT,
        keys::PREFIX_USAGE,
        keys::PARAMS,
        keys::PREFIX_ACCOUNT,
        keys::PREFIX_BANK_RECORD,
        keys::TREASURY,
        keys::SUPPLY,
        keys::CURRENCY,
        keys::PREFIX_DESTRUCTION,
        keys::PREFIX_JOB,
        keys::PREFIX_ORDER_JOB,
        keys::PLATFORM_FEE,
        keys::PREFIX_OVERDUE,
        keys::PREFIX_DESTRUCTION_QUEUE,
        keys::PREFIX_ATTESTATION_COUNT,
        keys::VALIDATORS_LATEST,
        keys::AGENCY_COUNT,
        keys::CHAIN_ID,
        keys::PREFIX_KEY_BINDING,
        keys::PREFIX_NONCE,
        keys::PREFIX_RESPONSE,
        keys::PREFIX_SUBJECT_KEY,
        keys::PREFIX_APPROVAL,
        keys::PREFIX_POLICY_VERSION,
        keys::PREFIX_VALIDATOR_UPDATE,
    ];
    let key = prefixes[usize::from(selector) % prefixes.len()];
    let _ = render(key, value);
    // The catalogue view computes a product's availability from the (here empty) state.
    let _ = render_in(&MemState::new(), key, value);
    // Some views read the key itself (a destruction-queue entry is all key: due time and
    // target, with an empty value): the same bytes as the rest of the key.
    let _ = render(&[key, value].concat(), &[]);
    if let Ok(r) = Receipt::decode(value) {
        assert_eq!(Receipt::decode(&r.encode()).ok(), Some(r));
    }
});

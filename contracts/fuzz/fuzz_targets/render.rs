//! Any stored value under any key prefix renders to JSON or to nothing, never a panic; and so
//! does any receipt.
#![no_main]

use dpx_contracts::{MemState, Receipt, keys, render, render_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else { return };
    let prefixes: [&[u8]; 21] = [
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
    ];
    let key = prefixes[usize::from(selector) % prefixes.len()];
    let _ = render(key, value);
    // The catalogue view computes a product's availability from the (here empty) state.
    let _ = render_in(&MemState::new(), key, value);
    if let Ok(r) = Receipt::decode(value) {
        assert_eq!(Receipt::decode(&r.encode()).ok(), Some(r));
    }
});

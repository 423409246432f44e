//! JSON views of stored values for the RPC and tools, chosen by key prefix.

use serde::Serialize;
use serde_json::{Value, json};

use crate::codec::{self, Wire};
use crate::compute::Job;
use crate::demands::{Demand, DemandResponse};
use crate::governance::{Proposal, ScheduledSet, ValidatorSet};
use crate::grants::{GrantRecord, UsageReceipt};
use crate::keys;
use crate::lifecycle::DestructionDue;
use crate::money::{Account, BankRecord, Currency, Supply, Treasury};
use crate::params::Params;
use crate::participants::Participant;
use crate::policy::PolicySetRecord;
use crate::products::{Product, catalogue_view};
use crate::state::State;
use crate::subjects::Subject;
use crate::trades::{Attestation, Order};

fn as_json<T: Wire + Serialize>(value: &[u8]) -> Option<Value> {
    codec::decode::<T>(value).ok().and_then(|v| serde_json::to_value(v).ok())
}

fn be_u64(value: &[u8]) -> Option<Value> {
    <[u8; 8]>::try_from(value).ok().map(|b| json!(u64::from_be_bytes(b)))
}

/// A block time (ms since the Unix epoch, UTC) as RFC 3339 with milliseconds, e.g.
/// `2026-11-30T07:00:00.000Z`. Integer arithmetic only (days to civil date, proleptic
/// Gregorian).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm, unsigned form).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Add an RFC 3339 twin (`<field>_rfc3339`) next to each millisecond time field named.
fn with_times(mut v: Value, path: &[&str], fields: &[&str]) -> Value {
    let mut obj = &mut v;
    for p in path {
        match obj.get_mut(*p) {
            Some(next) if next.is_object() => obj = next,
            _ => return v,
        }
    }
    if let Some(map) = obj.as_object_mut() {
        for f in fields {
            if let Some(ms) = map.get(*f).and_then(Value::as_u64) {
                map.insert(format!("{}_rfc3339", f.trim_end_matches("_ms")), json!(rfc3339_ms(ms)));
            }
        }
    }
    v
}

fn grant_record(value: &[u8]) -> Option<Value> {
    let v = as_json::<GrantRecord>(value)?;
    let v = with_times(v, &[], &["state_time_ms"]);
    Some(with_times(v, &["grant", "grant"], &["expires_at_ms"]))
}

/// Decode any stored value by its key into JSON (hashes and keys as hex). `None` for an
/// unknown key or an undecodable value.
pub fn render(key: &[u8], value: &[u8]) -> Option<Value> {
    let p = |prefix: &[u8]| key.starts_with(prefix);
    match key {
        k if k == keys::POLICY_CURRENT => as_json::<PolicySetRecord>(value),
        k if k == keys::PARAMS => as_json::<Params>(value),
        k if k == keys::VALIDATORS => as_json::<ValidatorSet>(value),
        k if k == keys::VALIDATORS_LATEST => as_json::<ScheduledSet>(value),
        k if k == keys::AGENCY_COUNT => be_u64(value),
        k if k == keys::AGENCIES => {
            crate::governance::decode_agencies(value).ok().map(|r| json!({ "agencies": r }))
        }
        k if k == keys::CHAIN_ID => std::str::from_utf8(value).ok().map(|s| json!(s)),
        k if k == keys::CURRENCY => as_json::<Currency>(value),
        k if k == keys::PLATFORM_FEE => <[u8; 4]>::try_from(value)
            .ok()
            .map(|b| json!({ "basis_points": u32::from_be_bytes(b) })),
        k if k == keys::TREASURY => as_json::<Treasury>(value),
        k if k == keys::SUPPLY => as_json::<Supply>(value),
        _ if p(keys::PREFIX_PARTICIPANT) => as_json::<Participant>(value),
        _ if p(keys::PREFIX_KEY_BINDING) => {
            codec::key(value, "account").ok().map(|k| json!({ "account": k }))
        }
        _ if p(keys::PREFIX_NONCE) => be_u64(value).map(|n| json!({ "next_nonce": n })),
        _ if p(keys::PREFIX_PRODUCT) => as_json::<Product>(value),
        _ if p(keys::PREFIX_DEMAND) => as_json::<Demand>(value),
        _ if p(keys::PREFIX_RESPONSE) => as_json::<DemandResponse>(value),
        _ if p(keys::PREFIX_ORDER) => as_json::<Order>(value),
        _ if p(keys::PREFIX_GRANT) => grant_record(value),
        _ if p(keys::PREFIX_USAGE) => {
            as_json::<UsageReceipt>(value).map(|v| with_times(v, &[], &["time_ms"]))
        }
        _ if p(keys::PREFIX_SUBJECT_KEY) => {
            codec::hash(value, "subject").ok().map(|id| json!({ "subject": id }))
        }
        _ if p(keys::PREFIX_SUBJECT) => {
            as_json::<Subject>(value).map(|v| with_times(v, &[], &["enrolled_time_ms"]))
        }
        _ if p(keys::PREFIX_ATTESTATION_COUNT) => {
            <[u8; 4]>::try_from(value).ok().map(|b| json!(u32::from_be_bytes(b)))
        }
        _ if p(keys::PREFIX_ATTESTATION) => as_json::<Attestation>(value),
        _ if p(keys::PREFIX_DESTRUCTION) || p(keys::PREFIX_OVERDUE) => {
            as_json::<DestructionDue>(value).map(|v| with_times(v, &[], &["due_ms"]))
        }
        _ if p(keys::PREFIX_DESTRUCTION_QUEUE) => keys::parse_destruction_queue(key)
            .filter(|_| value.is_empty())
            .map(|(due_ms, target)| {
                with_times(json!({ "due_ms": due_ms, "target": target }), &[], &["due_ms"])
            }),
        _ if p(keys::PREFIX_PROPOSAL) => as_json::<Proposal>(value),
        _ if p(keys::PREFIX_APPROVAL) => Some(json!({ "approved": true })),
        _ if p(keys::PREFIX_POLICY_VERSION) => as_json::<PolicySetRecord>(value),
        _ if p(keys::PREFIX_VALIDATOR_UPDATE) => as_json::<ValidatorSet>(value),
        _ if p(keys::PREFIX_ACCOUNT) => as_json::<Account>(value),
        _ if p(keys::PREFIX_BANK_RECORD) => as_json::<BankRecord>(value),
        _ if p(keys::PREFIX_JOB) => {
            as_json::<Job>(value).map(|v| with_times(v, &[], &["requested_time_ms"]))
        }
        _ if p(keys::PREFIX_ORDER_JOB) => {
            codec::hash(value, "job").ok().map(|id| json!({ "job": id }))
        }
        _ => None,
    }
}

/// [`render`], plus what is computed from the rest of the state: a product's `availability`
/// (the catalogue shows products of suspended, negative-listed or downgraded providers as
/// unavailable). The RPC renders with this when it has the state at hand.
pub fn render_in<S: State + ?Sized>(st: &S, key: &[u8], value: &[u8]) -> Option<Value> {
    if key.starts_with(keys::PREFIX_PRODUCT) {
        return catalogue_view(st, value);
    }
    render(key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_993_200_123), "2026-11-29T23:00:00.123Z");
        assert_eq!(rfc3339_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}

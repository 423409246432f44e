//! `dpx tx <operation> --key FILE [--field value ...]`, `dpx grant sign|inspect|use|register|
//! revoke|revoke-all` and `dpx subject enrol|rotate-key`.
//!
//! Every contract operation is a subcommand: the operation name (`list-product` or
//! `list_product`) and `--field value` pairs become the operation's JSON form
//! (`{"type": "list_product", "field": value}`; `--spec.grade 3` sets a nested field; values
//! that parse as JSON are taken as JSON, anything else as a string). The contracts' own
//! deserializer then checks it, so a mistyped field is a clear error before anything is
//! signed. The transaction is signed locally and submitted through the RPC.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use dpx_contracts::{
    Grant, GrantRef, Operation, SUBJECT_KEY_DOMAIN, SignedGrant, SubjectId, TransactionBody,
    rfc3339_ms, subject_key_message,
};
use dpx_crypto::{Hash, PublicKey};

use super::client::error_text;
use super::{Client, Output, emit, load_key};

/// The operations, for `dpx tx --help`.
const OPERATIONS: &str = "admit rotate-key set-rating set-list-status suspend reinstate \
list-product update-product delist-product post-demand respond-demand award-demand close-demand \
place-order accept-order deliver-order confirm-order cancel-order dispute-order \
resolve-dispute deposit withdraw attest review-attestation register-grant use-grant revoke-grant expire-grant enrol-subject \
rotate-subject-key revoke-all-grants propose approve request-job attest-job confirm-job cancel-job \
reject-job";

#[derive(Args, Debug)]
#[command(after_help = format!("Operations: {OPERATIONS}\n\nExample:\n  dpx tx set-rating --key rater.json --participant <hex> --rating 4"))]
pub struct TxArgs {
    /// The operation, e.g. `list-product`.
    pub op: String,
    /// The signer's key file.
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
    /// admission | check | commit.
    #[arg(long, default_value = "commit")]
    pub wait: String,
    /// Use this nonce instead of asking the node for the next one.
    #[arg(long)]
    pub nonce: Option<u64>,
    #[arg(long)]
    pub expiry_height: Option<u64>,
    /// The whole operation as JSON (instead of --field value pairs).
    #[arg(long)]
    pub json: Option<String>,
    /// `--field value` pairs of the operation.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub fields: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum GrantCmd {
    /// Sign a one-use grant offline with the data subject's current key; prints a compact
    /// string (QR-sized).
    Sign {
        /// The data subject's current key.
        #[arg(long)]
        key: PathBuf,
        /// The subject id the registrar enrolled (hex; `dpx hash --keyed`).
        #[arg(long)]
        subject: Hash,
        /// The subject's grant epoch (0, plus one per revoke-all). With `--rpc`, read from the
        /// ledger (and checked when given); offline, 0 unless given.
        #[arg(long)]
        epoch: Option<u64>,
        /// The consumer's account key (hex).
        #[arg(long)]
        consumer: PublicKey,
        /// The product id (hex).
        #[arg(long)]
        product: Hash,
        /// A purpose code from the chain's governed list (`dpx query params`).
        #[arg(long)]
        purpose: String,
        /// How long it stays valid from now (this machine's clock): `90s`, `30m`, `24h`, `7d`.
        /// The ledger compares the resulting `expires_at_ms` with block time.
        #[arg(long, conflicts_with = "expires_at_ms")]
        valid_for: Option<String>,
        /// Last valid block time, ms since the Unix epoch (instead of --valid-for).
        #[arg(long)]
        expires_at_ms: Option<u64>,
        /// The chain the grant is for. With `--rpc`, the node's (and checked when given);
        /// offline, `dpx-devnet` unless given.
        #[arg(long)]
        chain_id: Option<String>,
        /// The grant serial (hex); random if absent. The id is derived from subject and serial.
        #[arg(long)]
        serial: Option<Hash>,
        /// Ask this node (signing the request with the subject's key) for the subject's current
        /// key, status and grant epoch, and the chain id, before signing: a grant that the
        /// ledger would refuse (stale key or epoch, withdrawn subject, other chain) is refused
        /// here with the reason. Without it the grant is signed offline from the flags alone.
        #[arg(long)]
        rpc: Option<String>,
    },
    /// Decode a grant string and show what it authorizes.
    Inspect { grant: String },
    /// Use a grant once, as its consumer.
    Use {
        /// The compact grant string from `dpx grant sign`.
        grant: String,
        /// The consumer's key.
        #[arg(long)]
        key: PathBuf,
        /// What is being requested (hex hash); the provider checks it in the usage receipt.
        #[arg(long)]
        request_hash: Option<Hash>,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Register a grant so its consumer can use it later by id (the subject's key signs).
    Register {
        grant: String,
        #[arg(long)]
        key: PathBuf,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Revoke one of the subject's grants, registered or not, by its serial.
    Revoke {
        /// The grant's serial (hex), as `dpx grant sign` printed it.
        #[arg(long)]
        serial: Hash,
        /// The subject's current key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Revoke every grant the subject signed so far (its grant epoch moves on).
    RevokeAll {
        /// The subject's current key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubjectCmd {
    /// Enrol a data subject, as a registrar.
    Enrol {
        /// The registrar's key.
        #[arg(long)]
        key: PathBuf,
        /// The subject id (hex), from `dpx hash --keyed --key-file SECRET <identifier>`.
        #[arg(long)]
        subject_id: Hash,
        /// The subject's public key (hex), from the subject's phone.
        #[arg(long)]
        subject_key: PublicKey,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Move a subject to a new key, signed by the subject's current key or its registrar's.
    RotateKey {
        /// The signer: the subject's current key, or its registrar's key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        subject_id: Hash,
        /// The new key file (it signs the proof of possession).
        #[arg(long)]
        new_key: PathBuf,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
}

/// A duration in people's units: `<n>s`, `<n>m`, `<n>h` or `<n>d`, in milliseconds.
pub fn parse_duration_ms(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("{text:?}: expected e.g. 30m, 24h, 7d"))?;
    let per = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("{text:?}: the unit must be s, m, h or d"),
    };
    n.checked_mul(per).with_context(|| format!("{text:?} is too long"))
}

fn now_ms() -> anyhow::Result<u64> {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(u64::try_from(d.as_millis())?)
}

fn grant_json(g: &SignedGrant, compact: &str) -> Value {
    json!({
        "grant": compact,
        "id": g.grant.id(),
        "serial": g.grant.serial,
        "subject": g.grant.subject,
        "expires_at_ms": g.grant.expires_at_ms,
        "expires_at": rfc3339_ms(g.grant.expires_at_ms),
        "fields": g.grant,
    })
}

/// `--a.b value` pairs into a JSON object.
pub fn fields_to_json(fields: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut obj = Map::new();
    let mut it = fields.iter();
    while let Some(name) = it.next() {
        let Some(name) = name.strip_prefix("--") else {
            bail!("expected --field, found {name:?}");
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => (
                name.to_owned(),
                it.next().with_context(|| format!("--{name} needs a value"))?.clone(),
            ),
        };
        let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
        let path: Vec<String> = name.split('.').map(|p| p.replace('-', "_")).collect();
        insert(&mut obj, &path, value)?;
    }
    Ok(obj)
}

fn insert(obj: &mut Map<String, Value>, path: &[String], value: Value) -> anyhow::Result<()> {
    match path {
        [] => bail!("empty field name"),
        [last] => {
            obj.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let child = obj.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(child) = child else {
                bail!("--{first} is both a value and an object")
            };
            insert(child, rest, value)?;
        }
    }
    Ok(())
}

/// The operation named `op` with `fields`, checked by the contracts' deserializer.
pub fn build_operation(
    op: &str,
    json_text: Option<&str>,
    fields: &[String],
) -> anyhow::Result<Operation> {
    let mut obj = match json_text {
        Some(t) => serde_json::from_str::<Map<String, Value>>(t).context("--json")?,
        None => Map::new(),
    };
    obj.extend(fields_to_json(fields)?);
    obj.insert("type".into(), Value::String(op.replace('-', "_")));
    serde_json::from_value(Value::Object(obj.clone()))
        .with_context(|| format!("{op}: {}", serde_json::to_string(&obj).unwrap_or_default()))
}

async fn chain_id(c: &Client) -> anyhow::Result<String> {
    Ok(c.get("/v1/status").await?["chain_id"].as_str().context("status.chain_id")?.to_owned())
}

async fn next_nonce(c: &Client, key: &PublicKey) -> anyhow::Result<u64> {
    match c.get(&format!("/v1/state/accounts/{key}")).await {
        Ok(v) => v["value"]["next_nonce"]
            .as_u64()
            .or_else(|| v["value"].as_u64())
            .context("the node's account view has no next_nonce"),
        Err(e) if e.to_string().contains("404") => Ok(0),
        Err(e) => Err(e),
    }
}

/// The next nonce a refusal names (code `nonce_too_low`, `details.expected`), if that was the
/// reason.
fn stale_nonce(v: &Value) -> Option<u64> {
    if v["error"]["code"] != "nonce_too_low" {
        return None;
    }
    v["error"]["details"]["expected"].as_u64()
}

/// Sign `op` with `key_path` and submit; prints the result. Exit 3 if the ledger refused it.
pub async fn submit(
    rpc: &str,
    key_path: &std::path::Path,
    op: Operation,
    wait: &str,
    nonce: Option<u64>,
    expiry_height: Option<u64>,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let v = send(rpc, key_path, op, wait, nonce, expiry_height).await?;
    let code = v["receipt"]["code"].as_str().unwrap_or("ok").to_owned();
    let ok = v["status"] != "committed" || code.eq_ignore_ascii_case("ok");
    emit(out, &v, || {
        if v["status"] == "committed" {
            let reason = v["receipt"]["reason"].as_str().unwrap_or("");
            format!(
                "{} at height {}: {}{}",
                v["hash"].as_str().unwrap_or(""),
                v["height"],
                code,
                if reason.is_empty() { String::new() } else { format!(" ({reason})") }
            )
        } else {
            format!("{} {}", v["hash"].as_str().unwrap_or(""), v["status"].as_str().unwrap_or(""))
        }
    });
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

/// Sign `op` with `key_path` and submit; the node's answer (an error if it refused to take
/// the transaction; a committed refusal is in the answer's receipt).
pub async fn send(
    rpc: &str,
    key_path: &std::path::Path,
    op: Operation,
    wait: &str,
    nonce: Option<u64>,
    expiry_height: Option<u64>,
) -> anyhow::Result<Value> {
    let key = load_key(key_path)?;
    let c = Client::new(rpc)?;
    let chain = chain_id(&c).await?;
    let mut next = match nonce {
        Some(n) => n,
        None => next_nonce(&c, &key.public()).await?,
    };
    // The account's next nonce is read from the node's committed state, which can be a block
    // behind the transaction that used it (another node committed it first): when the node says
    // which nonce is next, sign again with it, a few times at most. An explicit --nonce is kept.
    let mut attempts = 0;
    let v = loop {
        attempts += 1;
        let mut body = TransactionBody::new(chain.clone(), next, op.clone());
        if let Some(h) = expiry_height {
            body = body.with_expiry(h);
        }
        let hex_tx = hex::encode(body.sign(&key).encode());
        let (status, v) = c.post(&format!("/v1/txs?wait={wait}"), &json!({ "tx": hex_tx })).await?;
        if (200..300).contains(&status) {
            break v;
        }
        match stale_nonce(&v) {
            Some(expected) if nonce.is_none() && attempts < 3 && expected > next => next = expected,
            _ => bail!("the node refused the transaction: {status} {}", error_text(&v)),
        }
    };
    Ok(v)
}

/// The command's own options may also follow the operation's fields (`dpx tx rate --rating 4
/// --rpc URL`): take them out of the trailing fields.
fn take_own_options(args: &mut TxArgs, out: &mut Output) -> anyhow::Result<()> {
    let mut rest = Vec::new();
    let mut it = std::mem::take(&mut args.fields).into_iter();
    while let Some(f) = it.next() {
        let (name, inline) = match f.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (f.clone(), None),
        };
        if !matches!(
            name.as_str(),
            "--rpc" | "--wait" | "--nonce" | "--expiry-height" | "--key" | "--json" | "--output"
        ) {
            rest.push(f);
            continue;
        }
        let v = match inline {
            Some(v) => v,
            None => it.next().with_context(|| format!("{name} needs a value"))?,
        };
        match name.as_str() {
            "--rpc" => args.rpc = v,
            "--wait" => args.wait = v,
            "--nonce" => args.nonce = Some(v.parse().context("--nonce")?),
            "--expiry-height" => args.expiry_height = Some(v.parse().context("--expiry-height")?),
            "--key" => args.key = v.into(),
            "--json" => args.json = Some(v),
            _ => {
                *out = match v.as_str() {
                    "json" => Output::Json,
                    "text" => Output::Text,
                    other => bail!("--output must be text or json, not {other}"),
                }
            }
        }
    }
    args.fields = rest;
    Ok(())
}

pub async fn run(mut args: TxArgs, mut out: Output) -> anyhow::Result<ExitCode> {
    take_own_options(&mut args, &mut out)?;
    let op = build_operation(&args.op, args.json.as_deref(), &args.fields)?;
    submit(&args.rpc, &args.key, op, &args.wait, args.nonce, args.expiry_height, out).await
}

pub async fn grant(cmd: GrantCmd, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        GrantCmd::Sign {
            key,
            subject,
            epoch,
            consumer,
            product,
            purpose,
            valid_for,
            expires_at_ms,
            chain_id,
            serial,
            rpc,
        } => {
            let signer = load_key(&key)?;
            let (epoch, chain_id) = match rpc {
                None => (epoch.unwrap_or(0), chain_id.unwrap_or_else(|| "dpx-devnet".to_owned())),
                Some(rpc) => {
                    let client = Client::new(&rpc)?.signing(Some(signer.clone()));
                    let on_ledger = subject_on_ledger(&client, &subject).await?;
                    check_signing_state(&on_ledger, &signer.public(), epoch, chain_id.as_deref())?
                }
            };
            let expires_at_ms = match (valid_for, expires_at_ms) {
                (_, Some(ms)) => ms,
                (Some(d), None) => now_ms()?.saturating_add(parse_duration_ms(&d)?),
                (None, None) => bail!("give --valid-for (e.g. 24h) or --expires-at-ms"),
            };
            let serial = serial.unwrap_or_else(|| Hash(dpx_crypto::Keypair::generate().seed()));
            let g = Grant {
                serial,
                subject: SubjectId(subject),
                key: signer.public(),
                epoch,
                consumer,
                product: dpx_contracts::ProductId(product),
                purpose,
                expires_at_ms,
            }
            .sign(&signer, &chain_id);
            let compact = g.to_compact();
            emit(out, &grant_json(&g, &compact), || compact.clone());
            Ok(ExitCode::SUCCESS)
        }
        GrantCmd::Inspect { grant } => {
            let g = SignedGrant::from_compact(&grant).context("not a valid grant string")?;
            let v = grant_json(&g, grant.trim());
            emit(out, &v, || serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        GrantCmd::Use { grant, key, request_hash, rpc } => {
            let g = SignedGrant::from_compact(&grant).context("not a valid grant string")?;
            let product = g.grant.product;
            let purpose = g.grant.purpose.clone();
            let subject = g.grant.subject;
            let op = Operation::UseGrant {
                grant: GrantRef::Inline(Box::new(g)),
                subject,
                product,
                purpose,
                request_hash: request_hash.unwrap_or(Hash::ZERO),
            };
            submit(&rpc, &key, op, "commit", None, None, out).await
        }
        GrantCmd::Register { grant, key, rpc } => {
            let g = SignedGrant::from_compact(&grant).context("not a valid grant string")?;
            let op = Operation::RegisterGrant { grant: Box::new(g) };
            submit(&rpc, &key, op, "commit", None, None, out).await
        }
        GrantCmd::Revoke { serial, key, rpc } => {
            submit(&rpc, &key, Operation::RevokeGrant { serial }, "commit", None, None, out).await
        }
        GrantCmd::RevokeAll { key, rpc } => {
            submit(&rpc, &key, Operation::RevokeAllGrants, "commit", None, None, out).await
        }
    }
}

/// What the ledger says about a subject, as far as signing a grant is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubjectOnLedger {
    chain_id: String,
    key: String,
    status: String,
    grant_epoch: u64,
}

/// The subject's record (read as the subject: the request is signed with its key) and the
/// node's chain id.
async fn subject_on_ledger(client: &Client, subject: &Hash) -> anyhow::Result<SubjectOnLedger> {
    let chain_id = chain_id(client).await?;
    let a = client.get_answer(&format!("/v1/state/subjects/{subject}")).await?;
    match a.status {
        200..=299 => {}
        // Only the subject's current key and its registrar may read the record.
        403 => bail!(
            "this key may not read subject {subject}'s record, so it is not the subject's \
             current key ({})",
            error_text(&a.body)
        ),
        404 => bail!("subject {subject} is not enrolled on chain {chain_id}"),
        s => bail!("looking up subject {subject}: {s} {}", error_text(&a.body)),
    }
    let rec = &a.body["value"];
    Ok(SubjectOnLedger {
        chain_id,
        key: rec["key"].as_str().context("the subject record names no key")?.to_owned(),
        status: rec["status"].as_str().unwrap_or("unknown").to_owned(),
        grant_epoch: rec["grant_epoch"]
            .as_u64()
            .context("the subject record has no grant_epoch")?,
    })
}

/// The epoch and chain id to sign with, or why the ledger would refuse the grant.
fn check_signing_state(
    l: &SubjectOnLedger,
    signer: &PublicKey,
    epoch: Option<u64>,
    chain_id: Option<&str>,
) -> anyhow::Result<(u64, String)> {
    if l.key != signer.to_string() {
        bail!(
            "this key ({signer}) is not the subject's current key ({}); sign with the current \
             key, or rotate first (`dpx subject rotate-key`)",
            l.key
        );
    }
    if l.status != "active" {
        bail!("the subject is {}, not active: the ledger refuses its grants", l.status);
    }
    if let Some(e) = epoch
        && e != l.grant_epoch
    {
        bail!("--epoch {e}, but the subject's grant epoch is {} on the ledger", l.grant_epoch);
    }
    if let Some(c) = chain_id
        && c != l.chain_id
    {
        bail!("--chain-id {c}, but the node serves chain {}", l.chain_id);
    }
    Ok((l.grant_epoch, l.chain_id.clone()))
}

pub async fn subject(cmd: SubjectCmd, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        SubjectCmd::Enrol { key, subject_id, subject_key, rpc } => {
            let op = Operation::EnrolSubject { subject_id: SubjectId(subject_id), subject_key };
            submit(&rpc, &key, op, "commit", None, None, out).await
        }
        SubjectCmd::RotateKey { key, subject_id, new_key, rpc } => {
            let new_key = load_key(&new_key)?;
            let chain = chain_id(&Client::new(&rpc)?).await?;
            let id = SubjectId(subject_id);
            let proof = new_key.sign(SUBJECT_KEY_DOMAIN, &chain, &subject_key_message(&id));
            let op = Operation::RotateSubjectKey {
                subject_id: id,
                new_key: new_key.public(),
                new_key_signature: proof,
            };
            submit(&rpc, &key, op, "commit", None, None, out).await
        }
    }
}

#[cfg(test)]
mod nonce_tests {
    use super::stale_nonce;
    use serde_json::json;

    #[test]
    fn a_stale_nonce_refusal_names_the_next_one() {
        let v = json!({"error": {"code": "nonce_too_low", "message": "nonce 1 already used; next is 2",
            "details": {"expected": 2, "got": 1}}});
        assert_eq!(stale_nonce(&v), Some(2));
        let other = json!({"error": {"code": "nonce_too_high", "message": "nonce 3 is ahead; next is 2",
            "details": {"expected": 2, "got": 3}}});
        assert_eq!(stale_nonce(&other), None);
        assert_eq!(stale_nonce(&json!({})), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_nested_json() {
        let f: Vec<String> =
            ["--rating", "4", "--spec.grade=3", "--spec.name", "CV check", "--flag", "true"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        let o = fields_to_json(&f).unwrap();
        assert_eq!(o["rating"], json!(4));
        assert_eq!(o["spec"]["grade"], json!(3));
        assert_eq!(o["spec"]["name"], json!("CV check"));
        assert_eq!(o["flag"], json!(true));
        assert!(fields_to_json(&["rating".to_owned()]).is_err());
        assert!(fields_to_json(&["--rating".to_owned()]).is_err());
    }

    #[test]
    fn durations_in_peoples_units() {
        assert_eq!(parse_duration_ms("90s").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("30m").unwrap(), 1_800_000);
        assert_eq!(parse_duration_ms("24h").unwrap(), 86_400_000);
        assert_eq!(parse_duration_ms("7d").unwrap(), 604_800_000);
        for bad in ["", "h", "24", "24x", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert!(parse_duration_ms("9999999999999999d").is_err(), "overflow");
    }

    #[test]
    fn online_signing_takes_the_ledgers_epoch_and_refuses_what_it_would_refuse() {
        let key = dpx_crypto::Keypair::from_seed([7; 32]).public();
        let other = dpx_crypto::Keypair::from_seed([8; 32]).public();
        let l = SubjectOnLedger {
            chain_id: "c".into(),
            key: key.to_string(),
            status: "active".into(),
            grant_epoch: 3,
        };
        assert_eq!(check_signing_state(&l, &key, None, None).unwrap(), (3, "c".to_owned()));
        assert_eq!(check_signing_state(&l, &key, Some(3), Some("c")).unwrap(), (3, "c".into()));
        let stale = check_signing_state(&l, &key, Some(2), None).unwrap_err().to_string();
        assert!(stale.contains("grant epoch is 3"), "{stale}");
        let chain = check_signing_state(&l, &key, None, Some("d")).unwrap_err().to_string();
        assert!(chain.contains("serves chain c"), "{chain}");
        let wrong = check_signing_state(&l, &other, None, None).unwrap_err().to_string();
        assert!(wrong.contains("not the subject's current key"), "{wrong}");
        let gone = SubjectOnLedger { status: "withdrawn".into(), ..l };
        let gone = check_signing_state(&gone, &key, None, None).unwrap_err().to_string();
        assert!(gone.contains("not active"), "{gone}");
    }

    #[test]
    fn operations_are_checked_before_signing() {
        let k = dpx_crypto::Keypair::from_seed([1; 32]).public().to_hex();
        let op = build_operation(
            "set-rating",
            None,
            &["--participant".into(), k, "--rating".into(), "4".into()],
        );
        assert!(matches!(op, Ok(Operation::SetRating { rating: 4, .. })));
        assert!(build_operation("set-rating", None, &["--bogus".into(), "1".into()]).is_err());
        assert!(build_operation("no-such-op", None, &[]).is_err());
    }
}

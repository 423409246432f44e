//! `dpx console login`: a one-time sign-in URL for the supervision console, signed with the
//! participant's key (the browser never holds the key; SPEC.md §14.4).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::{Client, Output, emit, load_key};
use crate::console::login::{LoginToken, TOKEN_LIFETIME_S_MAX, fresh_nonce};

#[derive(Subcommand, Debug)]
pub enum ConsoleCmd {
    /// Print a one-time URL that signs the browser in to a node's console as KEY's holder.
    Login {
        /// The participant's key file (a regulator's, auditor's, agency's, ...).
        #[arg(long)]
        key: PathBuf,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
        /// How long the URL stays usable, in seconds (at most 600; it works once).
        #[arg(long, default_value_t = 300)]
        valid_for_s: u64,
    },
}

pub async fn run(cmd: ConsoleCmd, out: Output) -> anyhow::Result<()> {
    let ConsoleCmd::Login { key, rpc, valid_for_s } = cmd;
    anyhow::ensure!(
        (1..=TOKEN_LIFETIME_S_MAX).contains(&valid_for_s),
        "--valid-for-s must be 1 to {TOKEN_LIFETIME_S_MAX}"
    );
    let key = load_key(&key)?;
    let status = Client::new(&rpc)?.get("/v1/status").await?;
    let chain_id = status["chain_id"].as_str().context("the node's status has no chain_id")?;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let expires_s = now_s + valid_for_s;
    let token = LoginToken::sign(&key, chain_id, expires_s, fresh_nonce()).encode();
    let url = format!("{}/console/login?token={token}", rpc.trim_end_matches('/'));
    emit(out, &json!({ "url": url, "key": key.public(), "expires_s": expires_s }), || {
        format!("{url}\n(open it within {valid_for_s} s; it signs in once, as {})", key.public())
    });
    Ok(())
}

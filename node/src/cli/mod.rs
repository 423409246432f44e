//! The `dpx` command line.
//!
//! Exit codes a script can rely on: 0 success, 1 failure (the message says why), 2 usage error
//! (from clap), 3 the transaction was committed but refused by the ledger (its receipt says why).

mod audit;
mod client;
mod console;
mod governance;
mod init;
mod tx;
mod validator;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use dpx_crypto::{Keypair, keyfile};

pub use client::{Answer, Client, error_text as client_error_text};

#[derive(Parser, Debug)]
#[command(
    name = "dpx",
    version,
    about = "dpx: a permissioned ledger for a regulated data product marketplace"
)]
pub struct Cli {
    /// Output format for results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a new ed25519 key file (mode 0600).
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prepare one node's home for an existing network from its genesis file (keys made
    /// there, config written, genesis checked and copied). The node follows the chain and
    /// signs from the height governance adds its key at.
    Init(init::InitArgs),
    /// The validator set in force and the changes governance scheduled (from a node's RPC).
    Validator {
        #[command(subcommand)]
        cmd: validator::ValidatorCmd,
    },
    /// Agencies' governance of membership: propose and approve validator changes and agency
    /// admissions, and see where a proposal stands.
    Governance {
        #[command(subcommand)]
        cmd: governance::GovernanceCmd,
    },
    /// Local test networks.
    Testnet {
        #[command(subcommand)]
        cmd: TestnetCmd,
    },
    /// Run a node.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Node status (chain, height, validators, peers).
    Status {
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// A committed block (`latest` or a height). Transactions the caller may not read are
    /// shown as their hash only: sign with `--key` to see your own (or, as a supervisor, all).
    Block {
        height: String,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
        /// Sign the request with this key file (the node then shows what the key may read).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Sign a transaction locally and submit it. `dpx tx --help` lists the operations.
    Tx(tx::TxArgs),
    /// Read state objects: `dpx query KIND [ID] [--prove]`.
    Query {
        /// participants, products, demands, responses, orders, grants, usage, policies, proposals, accounts, ...
        kind: String,
        id: Option<String>,
        #[arg(long)]
        prove: bool,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        after: Option<String>,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
        /// Sign the request with this key file: the node answers with what that key may read
        /// (anonymous: the public catalogue only; a party: its own grants, orders, ...).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// One-use authorization grants: sign one offline, inspect, use, register or revoke it.
    Grant {
        #[command(subcommand)]
        cmd: tx::GrantCmd,
    },
    /// Data subjects: a registrar enrols one; the subject or its registrar rotates its key.
    Subject {
        #[command(subcommand)]
        cmd: tx::SubjectCmd,
    },
    /// The supervision console served by nodes at /console: sign in from a browser.
    Console {
        #[command(subcommand)]
        cmd: console::ConsoleCmd,
    },
    /// Auditors: proofs that verify offline.
    Audit {
        #[command(subcommand)]
        cmd: audit::AuditCmd,
    },
    /// blake3 of standard input (or a file), hex: for terms, deliveries and request hashes.
    /// With `--keyed --key-file SECRET IDENTIFIER`: a data subject's id, the keyed blake3 of the
    /// identifier (e.g. an ID number) under the registrar's 32-byte secret (a file holding 64
    /// hex characters, e.g. from `openssl rand -hex 32`); without the secret nobody can test ID
    /// numbers against the ids on the ledger.
    Hash {
        /// The file to hash; with --keyed, the identifier itself (standard input if absent).
        file: Option<PathBuf>,
        #[arg(long, requires = "key_file")]
        keyed: bool,
        /// The registrar's secret (64 hex characters).
        #[arg(long, requires = "keyed")]
        key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TestnetCmd {
    /// Write genesis, keys and configs for a local network.
    Init(crate::testnet::InitArgs),
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Start the node in `--home` and run until SIGTERM / SIGINT.
    Start {
        #[arg(long, env = "DPX_HOME")]
        home: PathBuf,
        /// Start a validator although data/safety.bin is missing (a partial restore, a key
        /// copied without it). The file records what the key last signed; without it the node
        /// could double-sign. See docs/OPERATOR.md before using this.
        #[arg(long)]
        accept_missing_safety_state: bool,
    },
}

/// Print `v` as JSON, or `text` for humans. A reader that went away (`dpx … | head`, `grep
/// -q`) is not an error worth a panic: the output is simply not wanted any more.
pub fn emit(output: Output, v: &Value, text: impl FnOnce() -> String) {
    use std::io::Write as _;
    let s = match output {
        Output::Json => serde_json::to_string_pretty(v).unwrap_or_default(),
        Output::Text => text(),
    };
    let _ = writeln!(std::io::stdout(), "{s}");
}

/// The process entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let teardown = crate::node::Teardown::default();
    let outcome = rt.block_on(run(cli, &teardown));
    // A stopped node's tasks still hold its ledger: drop every task (waiting a bounded time
    // for blocking work), then close the ledger on this thread before the process exits.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    teardown.finish(std::time::Duration::from_secs(5));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            if output == Output::Json {
                println!("{}", json!({ "error": format!("{e:#}") }));
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, teardown: &crate::node::Teardown) -> anyhow::Result<ExitCode> {
    let out = cli.output;
    match cli.cmd {
        Cmd::Keygen { out: path } => {
            let key = Keypair::generate();
            keyfile::save(&path, &key)?;
            emit(out, &json!({ "public_key": key.public(), "path": path }), || {
                format!("wrote {} (public key {})", path.display(), key.public())
            });
        }
        Cmd::Testnet { cmd: TestnetCmd::Init(args) } => crate::testnet::init(&args, out)?,
        Cmd::Init(args) => init::run(&args, out)?,
        Cmd::Validator { cmd } => validator::run(cmd, out).await?,
        Cmd::Governance { cmd } => return governance::run(cmd, out).await,
        Cmd::Node { cmd: NodeCmd::Start { home, accept_missing_safety_state } } => {
            let opts = crate::node::StartOptions { accept_missing_safety_state };
            crate::node::run_with(&home, opts, teardown).await?;
        }
        Cmd::Status { rpc } => {
            let v = Client::new(&rpc)?.get("/v1/status").await?;
            emit(out, &v, || {
                format!(
                    "chain {}  height {}  block {}  validators {}  peers {}  mempool {}",
                    v["chain_id"].as_str().unwrap_or("?"),
                    v["height"],
                    v["latest_block_id"].as_str().unwrap_or("?"),
                    v["validators"].as_array().map_or(0, Vec::len),
                    v["peers"],
                    v["mempool_txs"],
                )
            });
        }
        Cmd::Block { height, rpc, key } => {
            let c = Client::new(&rpc)?.signing_with_file(key.as_deref())?;
            let v = c.get(&format!("/v1/blocks/{height}")).await?;
            emit(out, &v, || serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Cmd::Query { kind, id, prove, limit, after, rpc, key } => {
            let c = Client::new(&rpc)?.signing_with_file(key.as_deref())?;
            let v = if let Some(id) = id {
                c.get(&format!("/v1/state/{kind}/{id}?prove={prove}")).await?
            } else {
                let mut q = format!("/v1/state/{kind}?limit={}", limit.unwrap_or(100));
                if let Some(a) = after {
                    q = format!("{q}&after={a}");
                }
                c.get(&q).await?
            };
            emit(out, &v, || serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Cmd::Tx(args) => return tx::run(args, out).await,
        Cmd::Grant { cmd } => return tx::grant(cmd, out).await,
        Cmd::Subject { cmd } => return tx::subject(cmd, out).await,
        Cmd::Audit { cmd } => audit::run(cmd, out).await?,
        Cmd::Console { cmd } => console::run(cmd, out).await?,
        Cmd::Hash { file, keyed: true, key_file: Some(secret) } => {
            let secret = load_secret(&secret)?;
            let identifier = if let Some(text) = file {
                text.into_os_string()
                    .into_string()
                    .map_err(|_| anyhow::anyhow!("the identifier must be valid UTF-8"))?
            } else {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s.trim_end_matches(['\n', '\r']).to_owned()
            };
            let id = dpx_contracts::SubjectId::keyed(&secret, identifier.as_bytes());
            emit(out, &json!({ "subject_id": id }), || id.to_string());
        }
        Cmd::Hash { file, .. } => {
            let bytes = if let Some(f) = file {
                std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?
            } else {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                b
            };
            let h = dpx_crypto::Hash::digest(&bytes);
            emit(out, &json!({ "hash": h }), || h.to_hex());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A registrar's secret: a file of 64 hex characters (surrounding whitespace ignored).
pub fn load_secret(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the secret {}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .with_context(|| format!("{}: expected 64 hex characters", path.display()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("{}: expected 64 hex characters (32 bytes)", path.display()))
}

/// Load a key file with a helpful error.
pub fn load_key(path: &std::path::Path) -> anyhow::Result<Keypair> {
    keyfile::load(path).with_context(|| format!("loading key {}", path.display()))
}

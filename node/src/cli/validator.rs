//! `dpx validator set [--height H]` and `dpx validator pending`: the validator set in force and
//! the changes governance scheduled, from a node's RPC (`/v1/validators`,
//! `/v1/validators/pending`).

use std::fmt::Write as _;

use clap::Subcommand;
use serde_json::Value;

use super::{Client, Output, emit};

#[derive(Subcommand, Debug)]
pub enum ValidatorCmd {
    /// The set that validates a height (default: the next one, i.e. the set in force now).
    Set {
        /// A committed height, or the next one.
        #[arg(long)]
        height: Option<u64>,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Validator-set changes governance scheduled for later heights.
    Pending {
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
}

fn member_line(s: &mut String, sign: &str, v: &Value) {
    let _ = writeln!(
        s,
        "  {sign}{}  power {}  {}",
        v["key"].as_str().unwrap_or("?"),
        v["power"],
        v["name"].as_str().unwrap_or("")
    );
}

/// `/v1/validators` as text.
pub fn set_text(v: &Value) -> String {
    let members = v["validators"].as_array().map_or(&[][..], Vec::as_slice);
    let mut s = format!(
        "validator set for height {} (tip {}): {} validators, total power {}\n",
        v["height"],
        v["tip"],
        members.len(),
        v["total_power"]
    );
    for m in members {
        member_line(&mut s, "", m);
    }
    s.trim_end().to_owned()
}

/// `/v1/validators/pending` as text.
pub fn pending_text(v: &Value) -> String {
    let tip = v["tip"].as_u64().unwrap_or(0);
    let pending = v["pending"].as_array().map_or(&[][..], Vec::as_slice);
    if pending.is_empty() {
        return format!("no validator-set changes scheduled after height {} (tip {tip})", tip + 1);
    }
    let mut s = String::new();
    for p in pending {
        let at = p["effective_height"].as_u64().unwrap_or(0);
        let n = p["validators"].as_array().map_or(0, Vec::len);
        let _ =
            writeln!(s, "from height {at} (in {} blocks): {n} validators", at.saturating_sub(tip));
        for m in p["added"].as_array().into_iter().flatten() {
            member_line(&mut s, "+ ", m);
        }
        for k in p["removed"].as_array().into_iter().flatten() {
            let _ = writeln!(s, "  - {}", k.as_str().unwrap_or("?"));
        }
    }
    s.trim_end().to_owned()
}

pub async fn run(cmd: ValidatorCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        ValidatorCmd::Set { height, rpc } => {
            let path = match height {
                Some(h) => format!("/v1/validators?height={h}"),
                None => "/v1/validators".to_owned(),
            };
            let v = Client::new(&rpc)?.get(&path).await?;
            emit(out, &v, || set_text(&v));
        }
        ValidatorCmd::Pending { rpc } => {
            let v = Client::new(&rpc)?.get("/v1/validators/pending").await?;
            emit(out, &v, || pending_text(&v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_views_name_heights_keys_and_changes() {
        let set = json!({"height": 12, "tip": 11, "total_power": 20, "validators": [
            {"key": "aa", "power": 10, "name": "validator-0"},
            {"key": "bb", "power": 10, "name": "Agency E"}]});
        let t = set_text(&set);
        assert!(
            t.starts_with("validator set for height 12 (tip 11): 2 validators, total power 20")
        );
        assert!(t.contains("  bb  power 10  Agency E"), "{t}");
        let none = json!({"tip": 11, "pending": []});
        assert_eq!(
            pending_text(&none),
            "no validator-set changes scheduled after height 12 (tip 11)"
        );
        let some = json!({"tip": 11, "pending": [{"effective_height": 20, "validators": [{}, {}],
            "added": [{"key": "cc", "power": 1, "name": "new"}], "removed": ["aa"]}]});
        let t = pending_text(&some);
        assert!(t.starts_with("from height 20 (in 9 blocks): 2 validators"), "{t}");
        assert!(t.contains("+ cc  power 1  new") && t.contains("  - aa"), "{t}");
    }
}

//! Issue 20, part 4: every error is JSON with a stable code, one per cause, the same alone or
//! in a batch, listed in the OpenAPI document's catalogue with the status it is answered with;
//! transactions have a status (`pending`, `committed`, unknown) and resubmission is idempotent.
//! Real nodes over HTTP. Every answer checked here is also validated against the response
//! schema the OpenAPI document publishes for it.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dpx_contracts::{Operation, Role, SignedTransaction, TransactionBody};
use dpx_crypto::{Keypair, keyfile};
use dpx_tests::Cluster;
use serde_json::{Value, json};

// ----- a small HTTP client ------------------------------------------------------------------

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

/// An answer: status, content type, JSON body (`Null` if the body is not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    /// The `Retry-After` header, in seconds, if any.
    retry_after: Option<u64>,
    body: Value,
}

impl Http {
    fn new(base: &str) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Self { rt, client, base: base.to_owned() })
    }

    fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        self.rt.block_on(async {
            let r = req.send().await?;
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let bytes = r.bytes().await?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Answer { status, content_type, retry_after, body })
        })
    }

    fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    fn method(&self, m: reqwest::Method, path: &str) -> anyhow::Result<Answer> {
        self.send(self.client.request(m, format!("{}{path}", self.base)))
    }

    fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(self.client.post(format!("{}{path}", self.base)).json(body))
    }

    fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.post(url).header("content-type", content_type).body(body))
    }
}

// ----- the published document: catalogue and a small schema checker ------------------------

struct Doc {
    doc: Value,
    /// code -> HTTP status, from the catalogue.
    codes: BTreeMap<String, u16>,
}

impl Doc {
    fn fetch(http: &Http) -> anyhow::Result<Self> {
        let a = http.get("/v1/openapi.json")?;
        anyhow::ensure!(a.status == 200, "{a:?}");
        let doc = a.body;
        assert_eq!(doc["openapi"], "3.1.0");
        let codes = doc["x-error-catalogue"]
            .as_array()
            .expect("x-error-catalogue")
            .iter()
            .map(|e| {
                let code = e["code"].as_str().expect("code").to_owned();
                (code, e["status"].as_u64().expect("status") as u16)
            })
            .collect();
        Ok(Self { doc, codes })
    }

    fn schema(&self, name: &str) -> &Value {
        let s = &self.doc["components"]["schemas"][name];
        assert!(s.is_object(), "no schema {name}");
        s
    }

    /// Where `v` breaks `schema` (empty: it conforms). Covers what the document uses: `$ref`,
    /// `oneOf`, `anyOf`, `type` (one or a list), `const`, `enum`, `required`, `properties`, `items`, and
    /// the one `pattern` (64 lowercase hex characters).
    fn violations(&self, schema: &Value, v: &Value, at: &str) -> Vec<String> {
        if let Some(r) = schema["$ref"].as_str() {
            let target = self.doc.pointer(r.trim_start_matches('#'));
            let Some(target) = target else { return vec![format!("{at}: {r} does not resolve")] };
            return self.violations(target, v, at);
        }
        if let Some(options) = schema["oneOf"].as_array() {
            let fits = options.iter().filter(|o| self.violations(o, v, at).is_empty()).count();
            return if fits == 1 {
                Vec::new()
            } else {
                vec![format!("{at}: {v} fits {fits} of the oneOf options")]
            };
        }
        if let Some(options) = schema["anyOf"].as_array() {
            return if options.iter().any(|o| self.violations(o, v, at).is_empty()) {
                Vec::new()
            } else {
                vec![format!("{at}: {v} fits none of the anyOf options")]
            };
        }
        let mut out = Vec::new();
        let type_ok = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        };
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| type_ok(t)) {
            out.push(format!("{at}: {v} is not {types:?}"));
            return out;
        }
        if let Some(c) = schema.get("const")
            && c != v
        {
            out.push(format!("{at}: {v} is not {c}"));
        }
        if let Some(e) = schema["enum"].as_array()
            && !e.contains(v)
        {
            out.push(format!("{at}: {v} is not one of {e:?}"));
        }
        if schema["pattern"] == "^[0-9a-f]{64}$"
            && let Some(s) = v.as_str()
            && !(s.len() == 64
                && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            out.push(format!("{at}: {s:?} is not 64 lowercase hex characters"));
        }
        if let Some(obj) = v.as_object() {
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or_default();
                if !obj.contains_key(r) {
                    out.push(format!("{at}: missing {r} in {v}"));
                }
            }
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    if let Some(x) = obj.get(k) {
                        out.extend(self.violations(s, x, &format!("{at}.{k}")));
                    }
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, x) in arr.iter().enumerate() {
                out.extend(self.violations(items, x, &format!("{at}[{i}]")));
            }
        }
        out
    }

    fn conforms(&self, name: &str, v: &Value) {
        let bad = self.violations(self.schema(name), v, name);
        assert!(bad.is_empty(), "answer does not fit schema {name}:\n{}", bad.join("\n"));
    }

    /// `a` is a JSON error with `code`, answered with the catalogue's status for it.
    fn error(&self, a: &Answer, code: &str, what: &str) {
        assert!(a.content_type.starts_with("application/json"), "{what}: {a:?}");
        assert_eq!(a.body["error"]["code"], code, "{what}: {a:?}");
        self.conforms("Error", &a.body);
        let status =
            self.codes.get(code).unwrap_or_else(|| panic!("{what}: {code} not in the catalogue"));
        assert_eq!(
            a.status, *status,
            "{what}: {code} answered with {} but catalogued as {status}",
            a.status
        );
    }
}

// ----- transactions -------------------------------------------------------------------------

fn admit_op(name: &str) -> Operation {
    Operation::Admit {
        key: Keypair::generate().public(),
        name: name.into(),
        roles: vec![Role::Consumer],
    }
}

fn signed(key: &Keypair, chain: &str, nonce: u64, name: &str) -> SignedTransaction {
    TransactionBody::new(chain, nonce, admit_op(name)).sign(key)
}

fn hex_tx(tx: &SignedTransaction) -> String {
    hex::encode(tx.encode())
}

fn next_nonce(http: &Http, key: &Keypair) -> anyhow::Result<u64> {
    let a = http.get(&format!("/v1/state/accounts/{}", key.public()))?;
    Ok(if a.status == 404 { 0 } else { a.body["value"]["next_nonce"].as_u64().unwrap_or(0) })
}

/// Poll `f` until it holds, up to `max`.
fn wait_for(max: Duration, mut f: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        if f().unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("condition not reached within {max:?}")
}

// ----- the tests ----------------------------------------------------------------------------

/// Request-level errors: the query string, the body, unknown routes and methods, the body
/// limit, the request deadline; each is JSON with its own catalogued code.
#[test]
fn every_error_is_json_with_a_catalogued_code() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    net.configure(0, |c| {
        c.rpc.request_timeout_ms = 1500;
        c.rpc.max_batch_txs = 4;
    })?;
    net.start_all()?;
    net.wait_height(0, 1, Duration::from_mins(1))?;
    let http = Http::new(&net.rpc[0])?;
    let doc = Doc::fetch(&http)?;
    // The document's $refs all resolve.
    let text = doc.doc.to_string();
    for (i, _) in text.match_indices("\"$ref\":\"") {
        let r = &text[i + 8..];
        let r = &r[..r.find('"').expect("closing quote")];
        assert!(doc.doc.pointer(r.trim_start_matches('#')).is_some(), "{r} does not resolve");
    }

    let gets: &[(&str, &str)] = &[
        ("/v1/nope", "no_route"),
        ("/v1/blocks/abc", "bad_height"),
        ("/v1/blocks/999999", "not_found"),
        ("/v1/txs/xyz", "bad_hash"),
        ("/v1/state/grants/not-hex", "bad_id"),
        ("/v1/state/grants?after=zz", "bad_cursor"),
        ("/v1/state/participants?limit=many", "bad_query"),
        ("/v1/state/grants/00?prove=maybe", "bad_query"),
        ("/v1/state/grants/00?height=-1&prove=true", "bad_query"),
        ("/v1/events?participant=zz", "bad_filter"),
    ];
    for (path, code) in gets {
        doc.error(&http.get(path)?, code, path);
    }
    // A known path with a method it does not take: 405 with a JSON body (axum's is empty).
    for (m, path) in [
        (reqwest::Method::GET, "/v1/txs"),
        (reqwest::Method::DELETE, "/v1/blocks/latest"),
        (reqwest::Method::PUT, "/v1/txs/batch"),
    ] {
        doc.error(&http.method(m.clone(), path)?, "method_not_allowed", &format!("{m} {path}"));
    }
    let posts: &[(&str, Value, &str)] = &[
        ("/v1/txs", json!({"tx": "zz"}), "bad_encoding"),
        ("/v1/txs", json!({"tx": "00ff00ff"}), "malformed_tx"),
        ("/v1/txs", json!({"nope": 1}), "bad_json"),
        ("/v1/txs?wait=never", json!({"tx": "00"}), "bad_wait"),
        ("/v1/txs?timeout_ms=soon", json!({"tx": "00"}), "bad_query"),
        ("/v1/txs?unknown=1", json!({"tx": "00"}), "bad_query"),
        ("/v1/txs/batch?wait=commit", json!({"txs": []}), "bad_wait"),
        ("/v1/txs/batch", json!({"txs": ["00", "00", "00", "00", "00"]}), "batch_too_large"),
    ];
    for (path, body, code) in posts {
        doc.error(&http.post_json(path, body)?, code, &format!("{path} {body}"));
    }
    doc.error(
        &http.post_raw("/v1/txs/batch", "text/plain", b"x".to_vec())?,
        "unsupported_media_type",
        "text batch",
    );
    doc.error(
        &http.post_raw("/v1/txs/batch", "application/x-protobuf", vec![0xff, 0xff])?,
        "bad_protobuf",
        "proto batch",
    );

    // The same bad transaction gets the same code alone and in a batch.
    let batch = http.post_json("/v1/txs/batch", &json!({"txs": ["zz", "00ff00ff"]}))?;
    assert_eq!(batch.status, 200, "{batch:?}");
    doc.conforms("BatchResults", &batch.body);
    assert_eq!(batch.body["results"][0]["error"]["code"], "bad_encoding", "{batch:?}");
    assert_eq!(batch.body["results"][1]["error"]["code"], "malformed_tx", "{batch:?}");

    // Over the body limit (2 MiB): with a declared length, and chunked without one.
    // (Raw sockets: the server may answer and close before the whole body is written.)
    let (status, body) = raw_declared_post(&net.rpc[0], "/v1/txs", 3 << 20)?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");
    assert_eq!(doc.codes["body_too_large"], 413);
    let (status, body) = raw_chunked_post(&net.rpc[0], "/v1/txs", 3 << 20)?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");

    // A body that stalls: 408 `timeout`, as JSON.
    let (status, body) = raw_stalled_post(&net.rpc[0], "/v1/txs")?;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "timeout", "{body}");
    assert_eq!(doc.codes["timeout"], 408);

    // Successful answers fit their schemas too.
    doc.conforms("Status", &http.get("/v1/status")?.body);
    doc.conforms("Block", &http.get("/v1/blocks/latest")?.body);
    doc.conforms("Health", &http.get("/health")?.body);
    doc.conforms("Evidence", &http.get("/v1/evidence")?.body);
    let participants = http.get("/v1/state/participants")?;
    doc.conforms("StateList", &participants.body);
    let first =
        participants.body["items"][0]["account"].as_str().expect("a founding agency").to_owned();
    let one = http.get(&format!("/v1/state/participants/{first}?prove=true"))?;
    assert_eq!(one.status, 200, "{one:?}");
    doc.conforms("StateObject", &one.body);
    doc.conforms("Participant", &one.body["value"]);
    Ok(())
}

/// `host:port` of an RPC URL.
fn addr_of(rpc: &str) -> String {
    rpc.trim_start_matches("http://").trim_end_matches('/').to_owned()
}

/// Read an HTTP/1.1 answer with a content length: (status, JSON body).
fn read_answer(s: &mut TcpStream) -> anyhow::Result<(u16, Value)> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(_) if !buf.is_empty() => 0,
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len || n == 0 {
                let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                let body = serde_json::from_slice(&buf[end + 4..(end + 4 + len).min(buf.len())])
                    .unwrap_or(Value::Null);
                return Ok((status, body));
            }
        }
        anyhow::ensure!(n > 0, "connection closed before the answer: {text}");
    }
}

/// POST `total` bytes with `Transfer-Encoding: chunked` (no declared length).
fn raw_chunked_post(rpc: &str, path: &str, total: usize) -> anyhow::Result<(u16, Value)> {
    let addr = addr_of(rpc);
    let mut s = TcpStream::connect(&addr)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n"
    )?;
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0;
    // The server answers and closes once it has seen more than the limit; stop writing then.
    while sent < total {
        if write!(s, "{:x}\r\n", chunk.len())
            .and_then(|()| s.write_all(&chunk))
            .and_then(|()| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let _ = s.write_all(b"0\r\n\r\n");
    read_answer(&mut s)
}

/// POST `total` bytes with a declared `Content-Length`; stops writing when the server has
/// answered and closed.
fn raw_declared_post(rpc: &str, path: &str, total: usize) -> anyhow::Result<(u16, Value)> {
    let addr = addr_of(rpc);
    let mut s = TcpStream::connect(&addr)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {total}\r\n\r\n"
    )?;
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0;
    while sent < total && s.write_all(&chunk[..chunk.len().min(total - sent)]).is_ok() {
        sent += chunk.len();
    }
    read_answer(&mut s)
}

/// POST whose declared body never fully arrives.
fn raw_stalled_post(rpc: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let addr = addr_of(rpc);
    let mut s = TcpStream::connect(&addr)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"tx\":"
    )?;
    read_answer(&mut s)
}

/// Each refusal of a transaction has its own code and details, the same alone and in a batch;
/// committed bytes resubmitted get their receipt; account list items name their account.
#[test]
fn refusals_have_their_own_codes_and_resubmission_is_idempotent() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    net.start_all()?;
    net.wait_height(0, 2, Duration::from_mins(1))?;
    let http = Http::new(&net.rpc[0])?;
    let doc = Doc::fetch(&http)?;
    let chain = http.get("/v1/status")?.body["chain_id"].as_str().expect("chain_id").to_owned();
    let agency = keyfile::load(&net.agency_key(0))?;
    let n = next_nonce(&http, &agency)?;

    // Stateless refusals.
    let wrong_chain = signed(&agency, "another-chain", n, "a");
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&wrong_chain)}))?;
    doc.error(&a, "wrong_chain", "wrong chain");
    assert_eq!(a.body["error"]["details"], json!({"expected": chain, "got": "another-chain"}));
    let mut forged = signed(&agency, &chain, n, "b");
    forged.signature =
        Keypair::generate().sign(dpx_crypto::Domain::TRANSACTION, &chain, &forged.body);
    doc.error(
        &http.post_json("/v1/txs", &json!({"tx": hex_tx(&forged)}))?,
        "bad_signature",
        "forged",
    );

    // Stateful refusals, with the fields a client acts on.
    let ahead = signed(&agency, &chain, n + 5, "c");
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&ahead)}))?;
    doc.error(&a, "nonce_too_high", "ahead");
    assert_eq!(a.body["error"]["details"]["expected"], n);
    assert_eq!(a.body["error"]["details"]["got"], n + 5);
    assert_eq!(a.body["error"]["details"]["hash"], ahead.hash().to_string());
    let stranger = Keypair::generate();
    let a =
        http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&stranger, &chain, 0, "d"))}))?;
    doc.error(&a, "unknown_signer", "stranger");
    assert_eq!(a.body["error"]["details"]["signer"], stranger.public().to_string());
    let expired =
        TransactionBody::new(chain.as_str(), n, admit_op("e")).with_expiry(1).sign(&agency);
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&expired)}))?;
    doc.error(&a, "expired", "expired");
    assert_eq!(a.body["error"]["details"]["expiry_height"], 1);

    // The same refusals in a batch carry the same codes.
    let b = http.post_json(
        "/v1/txs/batch",
        &json!({"txs": [hex_tx(&wrong_chain), hex_tx(&forged), hex_tx(&ahead), hex_tx(&expired)]}),
    )?;
    assert_eq!(b.status, 200, "{b:?}");
    doc.conforms("BatchResults", &b.body);
    let codes: Vec<&str> = b.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(codes, ["wrong_chain", "bad_signature", "nonce_too_high", "expired"]);
    assert_eq!(b.body["results"][2]["error"]["details"]["expected"], n);

    // Commit one, then resubmit the same bytes: the receipt, not a conflict.
    let good = signed(&agency, &chain, n, "f");
    let first = http.post_json("/v1/txs?wait=commit", &json!({"tx": hex_tx(&good)}))?;
    assert_eq!(first.status, 200, "{first:?}");
    doc.conforms("TxCommitted", &first.body);
    for wait in ["check", "commit"] {
        let again =
            http.post_json(&format!("/v1/txs?wait={wait}"), &json!({"tx": hex_tx(&good)}))?;
        assert_eq!(again.status, 200, "wait={wait}: {again:?}");
        assert_eq!(again.body, first.body, "wait={wait}");
    }
    let b = http.post_json("/v1/txs/batch", &json!({"txs": [hex_tx(&good)]}))?;
    doc.conforms("BatchResults", &b.body);
    assert_eq!(
        b.body["results"][0],
        json!({"hash": good.hash(), "status": "committed", "height": first.body["height"]})
    );
    // Read anonymously, the read policy shows where it is, not what it says (SPEC.md §14).
    let status = http.get(&format!("/v1/txs/{}", good.hash()))?;
    let mut hidden = first.body.clone();
    let m = hidden.as_object_mut().expect("an object");
    m.remove("receipt");
    m.remove("tx");
    m.insert("hidden".into(), Value::Bool(true));
    assert_eq!(status.body, hidden);
    doc.conforms("TxStatus", &status.body);

    // Other bytes with the used nonce: nonce_too_low, naming the next one.
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&agency, &chain, n, "g"))}))?;
    doc.error(&a, "nonce_too_low", "used nonce");
    assert_eq!(a.body["error"]["details"]["expected"], n + 1);
    assert_eq!(a.body["error"]["details"]["got"], n);

    // Unknown transactions are 404; account list items name their account.
    doc.error(&http.get(&format!("/v1/txs/{}", "00".repeat(32)))?, "not_found", "unknown tx");
    let accounts = http.get("/v1/state/accounts")?;
    doc.conforms("StateList", &accounts.body);
    let items = accounts.body["items"].as_array().expect("items");
    assert!(!items.is_empty());
    let mine = items
        .iter()
        .find(|i| i["key"] == agency.public().to_string())
        .unwrap_or_else(|| panic!("no item names the agency: {items:?}"));
    assert_eq!(mine["next_nonce"], n + 1);
    for i in items {
        doc.conforms("Account", i);
    }
    Ok(())
}

/// A chain that cannot commit (one of two validators up): a commit wait times out with a
/// `pending` status document, the transaction reads as pending, the pool's limits have their
/// own codes; once the second validator starts, the same transaction reads as committed.
#[test]
fn pending_transactions_are_told_apart_from_committed_and_unknown() -> anyhow::Result<()> {
    let mut net = Cluster::init(2)?;
    for i in 0..2 {
        net.configure(i, |c| {
            c.mempool.max_txs = 3;
            c.mempool.max_txs_per_signer = 2;
            // The pool's own limits are under test here, not load shedding (below).
            c.mempool.shed_wait_ms = 0;
        })?;
    }
    net.start(0)?;
    let http = Http::new(&net.rpc[0])?;
    wait_for(Duration::from_mins(1), || Ok(http.get("/health")?.status == 200))?;
    let doc = Doc::fetch(&http)?;
    let chain = http.get("/v1/status")?.body["chain_id"].as_str().expect("chain_id").to_owned();
    let (a0, a1) = (keyfile::load(&net.agency_key(0))?, keyfile::load(&net.agency_key(1))?);
    assert_eq!(net.height(0)?, 0, "one of two validators cannot commit");

    let tx = signed(&a0, &chain, 0, "p");
    let started = Instant::now();
    let a = http.post_json("/v1/txs?wait=commit&timeout_ms=700", &json!({"tx": hex_tx(&tx)}))?;
    assert_eq!(a.status, 202, "{a:?}");
    assert!(started.elapsed() >= Duration::from_millis(700));
    doc.conforms("TxPending", &a.body);
    assert_eq!(a.body["hash"], tx.hash().to_string());
    assert_eq!(a.body["status"], "pending");
    assert_eq!(a.body["waited_ms"], 700);
    let s = http.get(&format!("/v1/txs/{}", tx.hash()))?;
    assert_eq!((s.status, &s.body), (200, &json!({"hash": tx.hash(), "status": "pending"})));
    doc.conforms("TxStatus", &s.body);
    doc.error(&http.get(&format!("/v1/txs/{}", "ab".repeat(32)))?, "not_found", "unknown");

    // The same bytes again: the same pending transaction. Other bytes, same nonce: refused.
    let again = http.post_json("/v1/txs", &json!({"tx": hex_tx(&tx)}))?;
    assert_eq!(again.status, 202, "{again:?}");
    doc.conforms("TxAccepted", &again.body);
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&a0, &chain, 0, "q"))}))?;
    doc.error(&a, "nonce_taken", "same nonce");
    assert_eq!(a.body["error"]["details"]["nonce"], 0);
    // The per-signer quota (2), then the pool's (3).
    assert_eq!(
        http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&a0, &chain, 1, "r"))}))?.status,
        202
    );
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&a0, &chain, 2, "s"))}))?;
    doc.error(&a, "signer_quota", "quota");
    assert_eq!(a.body["error"]["details"]["pending"], 2);
    assert_eq!(
        http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&a1, &chain, 0, "t"))}))?.status,
        202
    );
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&signed(&a1, &chain, 1, "u"))}))?;
    doc.error(&a, "mempool_full", "full");
    assert_eq!(a.body["error"]["details"]["count"], 3);
    // In a batch, the same codes.
    let b = http.post_json(
        "/v1/txs/batch",
        &json!({"txs": [hex_tx(&signed(&a0, &chain, 0, "v")), hex_tx(&tx)]}),
    )?;
    doc.conforms("BatchResults", &b.body);
    assert_eq!(b.body["results"][0]["error"]["code"], "nonce_taken", "{b:?}");
    assert_eq!(b.body["results"][1], json!({"hash": tx.hash(), "status": "checked"}));

    // Quorum: it commits and reads as committed; an anonymous reader sees where, not what
    // (SPEC.md §14), while resubmitting the bytes answers their receipt.
    net.start(1)?;
    wait_for(Duration::from_mins(1), || {
        Ok(http.get(&format!("/v1/txs/{}", tx.hash()))?.body["status"] == "committed")
    })?;
    let s = http.get(&format!("/v1/txs/{}", tx.hash()))?;
    doc.conforms("TxStatus", &s.body);
    assert_eq!(s.body["hidden"], true, "{s:?}");
    assert!(s.body.get("receipt").is_none(), "{s:?}");
    let again = http.post_json("/v1/txs", &json!({"tx": hex_tx(&tx)}))?;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["receipt"]["code"], "ok", "{again:?}");
    assert_eq!((&again.body["hash"], &again.body["height"]), (&s.body["hash"], &s.body["height"]));
    Ok(())
}

/// Load shedding: on a chain that cannot commit (one of two validators up), once the pool's
/// 64th transaction from the front has waited longer than `mempool.shed_wait_ms`,
/// submissions alone and in batches are refused at the door with 503 `overloaded`,
/// `Retry-After` and the figures, and counted; what was taken stays pending. A full node,
/// whose pool holds the same relayed transactions but which proposes nothing, never sheds.
/// When the chain commits again the pool drains and submissions are taken again.
#[test]
fn an_overloaded_node_refuses_submissions_at_the_door() -> anyhow::Result<()> {
    let mut net = Cluster::init_with(2, 1)?;
    for i in 0..3 {
        net.configure(i, |c| c.mempool.shed_wait_ms = 400)?;
    }
    net.start(0)?;
    net.start(2)?;
    let http = Http::new(&net.rpc[0])?;
    let full = Http::new(&net.rpc[2])?;
    for h in [&http, &full] {
        wait_for(Duration::from_mins(1), || Ok(h.get("/health")?.status == 200))?;
    }
    let doc = Doc::fetch(&http)?;
    let chain = http.get("/v1/status")?.body["chain_id"].as_str().expect("chain_id").to_owned();
    let a0 = keyfile::load(&net.agency_key(0))?;
    // The full node is connected before anything is relayed.
    wait_for(Duration::from_mins(1), || {
        Ok(dpx_tests::metric(&net.rpc[2], "dpx_peers").unwrap_or(0) >= 1)
    })?;

    // A burst of 70 on an empty pool: taken (it is the wait that counts, not the size).
    let burst: Vec<SignedTransaction> =
        (0..70).map(|n| signed(&a0, &chain, n, &format!("t{n}"))).collect();
    let b = http.post_json(
        "/v1/txs/batch",
        &json!({"txs": burst.iter().map(hex_tx).collect::<Vec<_>>()}),
    )?;
    assert_eq!(b.status, 200, "{b:?}");
    assert!(
        b.body["results"].as_array().expect("results").iter().all(|r| r["status"] == "checked"),
        "a burst within the limit is taken: {b:?}"
    );
    wait_for(Duration::from_mins(1), || Ok(full.get("/v1/status")?.body["mempool_txs"] == 70))?;

    std::thread::sleep(Duration::from_millis(600));
    let late = signed(&a0, &chain, 70, "late");
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&late)}))?;
    doc.error(&a, "overloaded", "alone");
    let d = &a.body["error"]["details"];
    assert_eq!(d["limit_ms"], 400, "{a:?}");
    assert!(d["waited_ms"].as_u64().expect("waited_ms") > 400, "{a:?}");
    assert_eq!(d["pending"], 70, "{a:?}");
    assert!(a.retry_after.is_some_and(|s| (1..=30).contains(&s)), "Retry-After: {a:?}");
    // Refused before any check: even bytes that would not decode get the same answer.
    doc.error(&http.post_json("/v1/txs", &json!({"tx": "00"}))?, "overloaded", "undecodable");
    let b = http.post_json("/v1/txs/batch", &json!({"txs": [hex_tx(&late)]}))?;
    doc.error(&b, "overloaded", "batch");
    assert!(dpx_tests::metric(&net.rpc[0], "dpx_rpc_overloaded_total")? >= 3);
    let s = http.get(&format!("/v1/txs/{}", burst[0].hash()))?;
    assert_eq!(s.body["status"], "pending", "what was taken stays: {s:?}");
    // The full node holds the same 70, as long, and takes the submission.
    let a = full.post_json("/v1/txs", &json!({"tx": hex_tx(&late)}))?;
    assert_eq!(a.status, 202, "a full node never sheds: {a:?}");

    // Quorum: the pool drains, and the door opens again.
    net.start(1)?;
    wait_for(Duration::from_mins(1), || {
        Ok(http.get(&format!("/v1/txs/{}", late.hash()))?.body["status"] == "committed")
    })?;
    let again = signed(&a0, &chain, 71, "again");
    let a = http.post_json("/v1/txs", &json!({"tx": hex_tx(&again)}))?;
    assert_eq!(a.status, 202, "{a:?}");
    Ok(())
}

//! The OpenAPI 3.1 document served at `/v1/openapi.json`. A test checks that it lists exactly
//! the routes in [`super::ROUTES`], so the document cannot drift from the router; another that
//! every `$ref` resolves; the error catalogue comes from [`super::error::CATALOGUE`], the table
//! the handlers' codes are checked against.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::error::CATALOGUE;

fn err_ref() -> Value {
    json!({ "$ref": "#/components/responses/Error" })
}

/// The error answers every route can give (the limits in front of every route).
fn err_responses() -> Value {
    let e = err_ref();
    json!({ "400": e, "404": e, "405": e, "408": e, "409": e, "413": e, "429": e, "500": e, "503": e })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: &Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn op(summary: &str, params: &Value, ok: &str, schema: &str) -> Value {
    let mut responses = err_responses();
    responses["200"] = json!({ "description": ok, "content": json_content(&schema_ref(schema)) });
    json!({ "summary": summary, "parameters": params, "responses": responses })
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": desc, "schema": { "type": "string" } })
}

fn query(name: &str, desc: &str, ty: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": { "type": ty } })
}

/// An object schema: `props` are (name, schema); `required` names the ones always present.
fn object(desc: &str, props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> =
        props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    json!({ "type": "object", "description": desc, "properties": properties, "required": required })
}

fn t(ty: &str, desc: &str) -> Value {
    json!({ "type": ty, "description": desc })
}

fn hex32(desc: &str) -> Value {
    json!({ "type": "string", "pattern": "^[0-9a-f]{64}$", "description": desc })
}

fn nullable(ty: &str, desc: &str) -> Value {
    json!({ "type": [ty, "null"], "description": desc })
}

/// The error catalogue as a Markdown table, for the `Error` response's description.
fn catalogue_table() -> String {
    let mut s = String::from(
        "Every error is `{\"error\": {\"code\", \"message\", \"details\"?}}`. Match on `code` \
         (stable, one per cause), never on `message`. `details` carries the cause's fields \
         where a client can act on them. Status 200 marks a code sent inside an event stream.\n\n\
         | code | status | when |\n|---|---|---|\n",
    );
    for e in CATALOGUE {
        let _ = writeln!(s, "| `{}` | {} | {} |", e.code, e.status, e.when);
    }
    s
}

fn error_schemas() -> Value {
    let codes: Vec<&str> = CATALOGUE.iter().map(|e| e.code).collect();
    let body = object(
        "one error",
        &[
            (
                "code",
                json!({ "type": "string", "enum": codes, "description": "see x-error-catalogue" }),
            ),
            ("message", t("string", "for humans; may change")),
            (
                "details",
                t(
                    "object",
                    "machine-readable fields of the cause, e.g. {\"expected\": 5, \"got\": 7} for nonce_too_high; `hash` when the transaction's hash is known",
                ),
            ),
        ],
        &["code", "message"],
    );
    json!({
        "ErrorBody": body,
        "Error": object("an error answer", &[("error", schema_ref("ErrorBody"))], &["error"]),
    })
}

fn tx_schemas() -> Value {
    let attr =
        object("", &[("key", t("string", "")), ("value", t("string", ""))], &["key", "value"]);
    let event = object(
        "something that happened, kind `<object>.<verb>`",
        &[
            ("kind", t("string", "e.g. grant.consumed")),
            ("attrs", json!({ "type": "array", "items": attr })),
        ],
        &["kind", "attrs"],
    );
    let receipt = object(
        "the outcome of a committed transaction",
        &[
            ("tx_hash", hex32("blake3 of the signed transaction bytes")),
            (
                "code",
                json!({ "type": "string", "enum": ["ok", "invalid", "denied", "failed", "undecodable"] }),
            ),
            ("reason", t("string", "empty on success")),
            ("events", json!({ "type": "array", "items": event })),
            (
                "decision",
                json!({ "type": ["object", "null"], "description": "the policy decision, on an authorization path" }),
            ),
        ],
        &["tx_hash", "code", "reason", "events"],
    );
    let hash = hex32("blake3 of the signed transaction bytes");
    let accepted = object(
        "admitted (queued for the checks) or checked (in this node's mempool); not yet committed",
        &[
            ("hash", hash.clone()),
            ("status", json!({ "type": "string", "enum": ["admitted", "checked"] })),
        ],
        &["hash", "status"],
    );
    let pending = object(
        "in this node's mempool, not committed yet",
        &[
            ("hash", hash.clone()),
            ("status", json!({ "const": "pending" })),
            ("waited_ms", t("integer", "how long a wait=commit submission waited")),
            ("message", t("string", "")),
        ],
        &["hash", "status"],
    );
    let committed = object(
        "committed, with its receipt",
        &[
            ("hash", hash.clone()),
            ("status", json!({ "const": "committed" })),
            ("height", t("integer", "the block that holds it")),
            ("index", t("integer", "its position in the block")),
            ("receipt", schema_ref("Receipt")),
            ("tx", t("object", "the decoded transaction: signer, body, signature")),
        ],
        &["hash", "status", "height", "index", "receipt"],
    );
    let item = json!({ "oneOf": [
        object("accepted", &[("hash", hash.clone()), ("status", json!({ "type": "string", "enum": ["admitted", "checked"] }))], &["hash", "status"]),
        object("committed before (idempotent resubmission)", &[("hash", hash), ("status", json!({ "const": "committed" })), ("height", t("integer", ""))], &["hash", "status", "height"]),
        object("refused, with the code it would get alone", &[("error", schema_ref("ErrorBody"))], &["error"]),
    ] });
    json!({
        "Receipt": receipt,
        "TxAccepted": accepted,
        "TxPending": pending,
        "TxCommitted": committed,
        "TxHidden": object(
            "committed, seen by a caller the read policy does not show its contents to (SPEC.md §14): where it is, not what it says",
            &[
                ("hash", t("string", "blake3 of the signed transaction bytes, hex")),
                ("status", json!({ "const": "committed" })),
                ("height", t("integer", "the block that holds it")),
                ("index", t("integer", "its position in the block")),
                ("hidden", json!({ "const": true })),
            ],
            &["hash", "status", "height", "index", "hidden"],
        ),
        "TxStatus": { "oneOf": [schema_ref("TxPending"), schema_ref("TxCommitted"), schema_ref("TxHidden")] },
        "BatchResults": object("one result per transaction, in order", &[("results", json!({ "type": "array", "items": item }))], &["results"]),
    })
}

fn chain_schemas() -> Value {
    let header = object(
        "a block header (SPEC.md: headers)",
        &[
            ("chain_id", t("string", "")),
            ("height", t("integer", "")),
            ("time_ms", t("integer", "proposer's time, ms since the Unix epoch")),
            ("proposer", hex32("the proposer's key")),
            ("parent_id", hex32("")),
            ("parent_certificate_hash", hex32("")),
            ("tx_root", hex32("")),
            ("state_root", hex32("state root after the previous block")),
            ("validator_set_hash", hex32("")),
            ("prev_receipts_hash", hex32("")),
        ],
        &[
            "chain_id",
            "height",
            "time_ms",
            "proposer",
            "parent_id",
            "parent_certificate_hash",
            "tx_root",
            "state_root",
            "validator_set_hash",
            "prev_receipts_hash",
        ],
    );
    let block_tx = object(
        "",
        &[
            ("hash", hex32("")),
            ("bytes", t("string", "hex of the signed transaction")),
            ("tx", nullable("object", "decoded; null on a consensus-only chain")),
        ],
        &["hash", "bytes", "tx"],
    );
    let block = object(
        "a committed block",
        &[
            ("height", t("integer", "")),
            ("id", hex32("the block id")),
            ("header", schema_ref("Header")),
            ("txs", json!({ "type": "array", "items": block_tx })),
            ("certificate", nullable("string", "hex of the commit certificate")),
        ],
        &["height", "id", "header", "txs", "certificate"],
    );
    let validator =
        object("", &[("key", hex32("")), ("power", t("integer", ""))], &["key", "power"]);
    let member = object(
        "a validator: its consensus key (also its p2p identity), voting power and the name governance gave it",
        &[("key", hex32("")), ("power", t("integer", "")), ("name", t("string", ""))],
        &["key", "power", "name"],
    );
    let members = json!({ "type": "array", "items": member });
    let validator_set = object(
        "the validator set that validates a height",
        &[
            ("height", t("integer", "the height this set validates")),
            ("tip", t("integer", "this node's latest committed height")),
            ("total_power", t("integer", "")),
            ("validators", members.clone()),
        ],
        &["height", "tip", "total_power", "validators"],
    );
    let scheduled = object(
        "a set governance scheduled (update_validators)",
        &[
            ("effective_height", t("integer", "the first height it validates")),
            ("validators", members.clone()),
            (
                "added",
                json!({ "type": "array", "items": member, "description": "members new to it, or with a changed power, against the set before it" }),
            ),
            (
                "removed",
                json!({ "type": "array", "items": hex32(""), "description": "keys of the set before it that it drops" }),
            ),
        ],
        &["effective_height", "validators", "added", "removed"],
    );
    let pending = object(
        "the sets scheduled for heights after the next one, oldest first (at most 64)",
        &[
            ("tip", t("integer", "this node's latest committed height")),
            ("pending", json!({ "type": "array", "items": scheduled })),
        ],
        &["tip", "pending"],
    );
    let status = object(
        "this node's view",
        &[
            ("chain_id", t("string", "")),
            ("version", t("string", "")),
            ("moniker", t("string", "")),
            ("node_key", hex32("this node's key on the network (its p2p identity)")),
            (
                "validator",
                t(
                    "boolean",
                    "whether this node signs now: configured to validate and its signing key in the set of the next height",
                ),
            ),
            (
                "signing_key",
                nullable(
                    "string",
                    "the validator key its consensus core signs with; differs from node_key during a key rotation until the effective height; null on a full node",
                ),
            ),
            ("height", t("integer", "")),
            ("latest_block_id", t("string", "")),
            ("latest_block_time_ms", t("integer", "")),
            ("round", t("integer", "")),
            ("mempool_txs", t("integer", "")),
            ("peers", t("integer", "")),
            ("validators", json!({ "type": "array", "items": validator })),
        ],
        &["chain_id", "version", "height", "validators"],
    );
    let health = object(
        "",
        &[
            ("status", json!({ "const": "ok" })),
            ("height", t("integer", "")),
            ("last_block_age_ms", t("integer", "")),
        ],
        &["status", "height", "last_block_age_ms"],
    );
    json!({
        "Header": header,
        "Block": block,
        "Status": status,
        "Health": health,
        "ValidatorSet": validator_set,
        "PendingValidators": pending,
        "Evidence": object("", &[("evidence", json!({ "type": "array", "items": t("string", "hex") }))], &["evidence"]),
        "OpenApi": object("this document", &[("openapi", t("string", ""))], &["openapi"]),
    })
}

/// The JSON of each state kind's objects (`value` of `/v1/state/{kind}/{id}`, items of lists).
fn kind_schemas() -> Value {
    let key = |d: &str| hex32(d);
    let int = |d: &str| t("integer", d);
    let s = |d: &str| t("string", d);
    json!({
        "Participant": object("kind participants", &[("account", key("the participant's account (its first key)")), ("current_key", key("")), ("name", s("")), ("roles", json!({ "type": "array", "items": { "type": "string" } })), ("rating", int("")), ("list_status", s("")), ("suspended", t("boolean", "")), ("suspension_reason", s("")), ("admitted_by", key("")), ("admitted_height", int("")), ("updated_height", int(""))], &["account", "current_key", "name", "roles", "rating", "list_status", "suspended", "admitted_by", "admitted_height", "updated_height"]),
        "Account": object("kind accounts", &[("key", key("the account's key")), ("next_nonce", int("the nonce its next transaction must carry"))], &["key", "next_nonce"]),
        "Balance": object("kind balances (by account key)", &[("owner", key("the participant's account key")), ("balance", int("minor units of the chain's currency (the genesis names it, e.g. CNY in fen)")), ("banks", json!({ "type": "array", "items": hex32("a settlement bank that recorded a transfer for this account") })), ("updated_height", int(""))], &["owner", "balance", "banks", "updated_height"]),
        "BankRecord": object("kind bank_records (list only)", &[("bank", key("")), ("account", key("")), ("kind", s("deposit or withdrawal")), ("amount", int("minor units")), ("reference", s("the bank's reference, unique per bank")), ("height", int("")), ("tx_hash", key(""))], &["bank", "account", "kind", "amount", "reference", "height", "tx_hash"]),
        "Money": t("object", "kind money, ids treasury ({balance, fees_collected, paid_out}) and supply ({deposited, withdrawn}): the sum of all balances, escrows and the treasury always equals deposited - withdrawn"),
        "Product": object("kind products", &[("id", key("")), ("provider", key("")), ("spec", t("object", "category, domain, grade, price, access policy, terms hash")), ("listed", t("boolean", "")), ("listed_height", int("")), ("updated_height", int("")), ("version", int(""))], &["id", "provider", "spec", "listed"]),
        "Demand": object("kind demands", &[("id", key("")), ("poster", key("")), ("title", s("")), ("domain", s("")), ("budget", int("")), ("description_hash", key("")), ("deadline_height", nullable("integer", "")), ("status", s("open, awarded or closed")), ("responses", int("")), ("awarded_to", nullable("string", "")), ("posted_height", int("")), ("updated_height", int(""))], &["id", "poster", "title", "status"]),
        "DemandResponse": object("kind responses", &[("demand", key("")), ("responder", key("")), ("product", nullable("string", "")), ("price", int("")), ("proposal_hash", key("")), ("height", int(""))], &["demand", "responder", "price", "height"]),
        "Order": t("object", "kind orders: buyer, product, amount, status (ordered, accepted, delivered, settled, cancelled, disputed), escrow (held from acceptance until settlement or refund), fee_basis_points (fixed at acceptance), fee_amount, refund_amount, terms_hash (an order from an awarded demand), settlement_amount (the provider's share before the fee), heights"),
        "GrantRecord": object("kind grants", &[("grant", nullable("object", "the signed grant, once registered or used")), ("subject", key("")), ("state", s("issued, consumed, revoked or expired")), ("state_height", int("")), ("registered_height", int(""))], &["subject", "state"]),
        "UsageReceipt": object("kind usage", &[("grant", key("")), ("consumer", key("")), ("product", key("")), ("purpose", s("")), ("height", int("")), ("request_hash", key("")), ("tx_hash", key(""))], &["grant", "consumer", "product", "height", "tx_hash"]),
        "Attestation": t("object", "kind attestations: a holder's attestation of a life-cycle stage (collected, transmitted, stored, processed, shared_onward, destroyed; in that order, SPEC.md §9), with a regulator's review (confirmed or rejected) once given"),
        "Job": t("object", "kind jobs: a compute job (SPEC.md 6.2): consumer, compute_node, products with their providers and authorities (a grant consumed or an order), purpose, code_hash, status requested|attested|received|cancelled|rejected, the node's input_commitments, result_hash and inputs_destroyed once attested; read by its consumer, compute node, providers, the subjects of its grants and supervisors"),
        "DestructionDue": t("object", "kind destructions (list only): data delivered to a holder that must be destroyed by due_ms (the product's retention_days after delivery), overdue_height once reported overdue; kind overdue_destructions lists every report a block start made, by height (the record as marked then; never removed)"),
        "Proposal": object("kind proposals", &[("id", int("")), ("proposer", key("")), ("action", t("object", "")), ("approvals", int("")), ("status", s("open or executed")), ("created_height", int("")), ("expiry_height", int("")), ("decided_height", int(""))], &["id", "proposer", "action", "status"]),
        "PolicySet": object("kind policies", &[("version", int("")), ("text", s("Cedar policies")), ("hash", key("blake3 of the text")), ("height", int(""))], &["version", "text", "hash", "height"]),
        "StateValue": { "description": "the object's JSON, by kind (the schema of the kind named in the path)", "anyOf": [
            schema_ref("Participant"), schema_ref("Account"), schema_ref("Product"), schema_ref("Demand"),
            schema_ref("DemandResponse"), schema_ref("Order"), schema_ref("GrantRecord"), schema_ref("UsageReceipt"),
            schema_ref("Attestation"), schema_ref("Proposal"), schema_ref("PolicySet"),
            schema_ref("Balance"), schema_ref("BankRecord"), schema_ref("Money") ] },
        "CataloguePage": object("one page of a catalogue search, in product-id order", &[("items", json!({ "type": "array", "items": schema_ref("Product") })), ("next", nullable("string", "the last product id read (after=); null when the catalogue is exhausted. A page may be short, even empty, and still have a next: a search reads at most 10 000 products per request")), ("scanned", nullable("integer", "products read for this page (supervisors; null for others: it would count hidden ones)"))], &["items", "next", "scanned"]),
        "AggregateRange": object("counts over heights from_height..=to_height (empty when from_height > to_height)", &[("from_height", int("")), ("to_height", int("")), ("from_time_ms", int("with a time range: blocks at or after this time")), ("to_time_ms", int("with a time range: blocks before this time")), ("counts", t("object", &format!("by counter: {}. Event kinds count receipt events; amount.* sum minor units (deposited, withdrawn, escrowed at acceptance, paid to providers and fees at settlement); txs_refused counts receipts whose code is not ok", super::aggregates::counters_doc())))], &["from_height", "to_height", "counts"]),
        "Aggregates": object("counts over one range (from_height, to_height, counts; from_time_ms and to_time_ms with a time range), or, with interval_ms, a series of time buckets; and the extent of the node's index: heights above indexed_height are not counted yet, heights below counted_from_height have no receipts on this node (its ledger began from a snapshot)", &[("from_height", int("one range")), ("to_height", int("one range")), ("from_time_ms", int("one time range")), ("to_time_ms", int("one time range")), ("counts", t("object", "one range: by counter, as in AggregateRange")), ("interval_ms", int("a series")), ("buckets", json!({ "type": "array", "items": schema_ref("AggregateRange") })), ("indexed_height", int("")), ("counted_from_height", int(""))], &["indexed_height", "counted_from_height"]),
        "GrantHistory": object("a grant's life, in order (steps sorted by height and position)", &[("grant", key("")), ("state", s("issued, consumed, revoked or expired")), ("subject", key("the subject id")), ("consumer", nullable("string", "null when revoked before anyone registered it")), ("product", nullable("string", "")), ("purpose", nullable("string", "")), ("expires_at_ms", nullable("integer", "")), ("steps", json!({ "type": "array", "items": object("one step", &[("step", s("registered, consumed, revoked, expired or attested")), ("height", int("")), ("time_ms", nullable("integer", "the block's time")), ("index", int("the transaction's position in its block")), ("tx_hash", key("")), ("tx_proof", s("where to fetch the transaction's proof bundle (with its receipt's)")), ("stage", s("attested: the life-cycle stage")), ("attester", key("attested")), ("hash", key("attested: the evidence hash")), ("seq", int("attested")), ("review", nullable("object", "attested: a regulator's verdict, once given")), ("purpose", s("consumed")), ("request_hash", key("consumed")), ("consumer", key("consumed"))], &["step", "height", "time_ms"]) }))], &["grant", "state", "subject", "steps"]),
        "Decision": object("a policy decision recorded in a transaction's receipt (SPEC.md: receipts)", &[("height", int("")), ("index", int("the transaction's position in its block")), ("time_ms", int("the block's time")), ("tx_hash", hex32("")), ("code", s("the receipt's code (ok, or why the transaction was refused)")), ("action", s("the Cedar action, e.g. order")), ("principal", hex32("the account that asked")), ("resource", s("the Cedar resource uid, e.g. Product::\"<hex>\"")), ("allowed", t("boolean", "")), ("policy_version", int("the policy set that decided")), ("policy_hash", hex32("blake3 of that policy set's text")), ("determining", json!({ "type": "array", "items": s("") })), ("reason", s(""))], &["height", "index", "time_ms", "tx_hash", "code", "action", "principal", "resource", "allowed", "policy_version", "policy_hash", "determining", "reason"]),
        "DecisionPage": object("one page of a decision search, newest first", &[("items", json!({ "type": "array", "items": schema_ref("Decision") })), ("next", nullable("string", "<height>.<index> to pass as before= for the next page; null when the range is exhausted. A page may be short, even empty, and still have a next: a search reads at most 20 000 receipts and 5 000 blocks per request")), ("scanned", object("what this page read", &[("blocks", int("")), ("receipts", int(""))], &["blocks", "receipts"]))], &["items", "next", "scanned"]),
        "StateList": object("one page of a kind", &[("kind", s("")), ("items", json!({ "type": "array", "items": schema_ref("StateValue") })), ("next", nullable("string", "cursor for the next page (after=); null on the last"))], &["kind", "items", "next"]),
        "ProofBundle": object("a value and everything to check it offline (SPEC.md: proof bundles)", &[("chain_id", s("")), ("key", s("hex of the state key")), ("value", nullable("string", "hex of the stored value; null for a proof of absence")), ("version", int("the state version (block height) proved at")), ("proof", t("object", "the Merkle proof")), ("header", schema_ref("Header")), ("certificate", s("hex of the certificate of block version + 1")), ("validators", json!({ "type": "array", "items": t("object", "") }))], &["chain_id", "key", "value", "version", "proof", "header", "certificate", "validators"]),
        "MerkleProof": object("an inclusion proof in a binary Merkle tree of transactions or receipts (SPEC.md §7)", &[("index", int("the leaf's position")), ("leaf_count", int("leaves in the tree")), ("siblings", json!({ "type": "array", "items": hex32("sibling subtree root, from the leaf up") }))], &["index", "leaf_count", "siblings"]),
        "CertifiedHeader": object("a header, its commit certificate and the validators that signed it", &[("header", schema_ref("Header")), ("certificate", s("hex of the block's commit certificate (protobuf)")), ("validators", json!({ "type": "array", "items": t("object", "") }))], &["header", "certificate", "validators"]),
        "ReceiptProof": object("a receipt and its proof against next.header.prev_receipts_hash", &[("receipt", s("hex of the receipt bytes")), ("proof", schema_ref("MerkleProof")), ("next", schema_ref("CertifiedHeader"))], &["receipt", "proof", "next"]),
        "TxProofBundle": object("a committed transaction and everything to check it and its receipt offline (SPEC.md §11.2)", &[("chain_id", s("")), ("tx_hash", hex32("blake3 of the transaction bytes")), ("height", int("the block holding it")), ("index", int("its position in the block")), ("tx", s("hex of the signed transaction bytes")), ("tx_proof", schema_ref("MerkleProof")), ("block", schema_ref("CertifiedHeader")), ("receipt", json!({ "description": "null while block height + 1 is not committed (see receipt_pending)", "anyOf": [schema_ref("ReceiptProof"), { "type": "null" }] })), ("receipt_pending", s("present when receipt is null: why"))], &["chain_id", "tx_hash", "height", "index", "tx", "tx_proof", "block", "receipt"]),
        "StateObject": object("one object", &[("kind", s("")), ("id", s("")), ("value", json!({ "description": "null for a proof of absence", "anyOf": [schema_ref("StateValue"), { "type": "null" }] })), ("proof", schema_ref("ProofBundle"))], &["kind", "id", "value"]),
    })
}

fn merge(parts: &[Value]) -> Value {
    let mut out = Map::new();
    for p in parts {
        if let Some(o) = p.as_object() {
            out.extend(o.clone());
        }
    }
    Value::Object(out)
}

/// The document.
pub fn document() -> Value {
    let wait = query("wait", "admission | check (default) | commit", "string");
    let timeout =
        query("timeout_ms", "with wait=commit: how long to wait (capped by config)", "integer");
    let mut submit = op(
        "Submit one signed transaction",
        &json!([wait, timeout]),
        "committed: with wait=commit, or at once for bytes committed before (resubmission is idempotent: the receipt, not an error)",
        "TxCommitted",
    );
    submit["requestBody"] = json!({
        "required": true,
        "content": {
            "application/json": { "schema": { "type": "object", "required": ["tx"],
                "properties": { "tx": { "type": "string", "description": "hex of the SignedTransaction protobuf" } } } },
            "application/x-protobuf": { "schema": { "type": "string", "format": "binary" } }
        }
    });
    submit["responses"]["202"] = json!({
        "description": "not committed yet: admitted or checked (wait=admission|check), or pending when a wait=commit timed out; follow it with GET /v1/txs/{hash}",
        "content": json_content(&json!({ "oneOf": [schema_ref("TxAccepted"), schema_ref("TxPending")] })),
    });
    submit["responses"]["403"] = err_ref();
    submit["responses"]["415"] = err_ref();
    let shedding = "A validator past its capacity sheds load: while its mempool's 64th transaction from the front has waited longer than mempool.shed_wait_ms, submissions (alone or in batches) are refused before any check with 503 overloaded and Retry-After (seconds); retry then, or submit to another node.";
    submit["description"] = json!(shedding);
    let mut batch = op(
        "Submit up to rpc.max_batch_txs transactions",
        &json!([query("wait", "admission | check", "string")]),
        "one result per transaction",
        "BatchResults",
    );
    batch["requestBody"] = json!({ "required": true, "content": {
        "application/json": { "schema": {
            "type": "object", "required": ["txs"], "properties": { "txs": { "type": "array", "items": { "type": "string", "description": "hex of a signed transaction" } } } } },
        "application/x-protobuf": { "schema": { "type": "string", "format": "binary",
            "description": "a dpx.node.v1.TxBatch message (repeated bytes txs = 1): no hex, for high-rate clients" } } } });
    batch["responses"]["415"] = err_ref();
    batch["description"] = json!(shedding);
    let kind = path_param(
        "kind",
        "participants, products, demands, responses, orders, grants, usage, subjects, policies, proposals, accounts, attestations, balances, bank_records, money, destructions, overdue_destructions, jobs",
    );
    let mut metrics = json!({ "summary": "Prometheus metrics", "responses": err_responses() });
    metrics["responses"]["200"] = json!({ "description": "text exposition", "content": { "text/plain": { "schema": { "type": "string" } } } });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "dpx node RPC", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Submit signed transactions, read blocks and state (with Merkle proofs), follow events. Errors: see the Error response for the catalogue of codes. Limits (all in the [rpc] config): per-IP request rate (429 with Retry-After); a request's body and answer within request_timeout_ms (408; wait=commit may wait commit_wait_max_ms more); open connections in total and per IP (over either, the connection gets 503 too_many_connections and is closed); a connection must send its request headers within header_read_timeout_ms and is closed after idle_timeout_ms without a request, or of not reading a response." },
        "paths": {
            "/v1/txs": { "post": submit },
            "/v1/txs/batch": { "post": batch },
            "/v1/txs/{hash}": { "get": op("A transaction's status: committed (with height and receipt) or pending (in this node's mempool); 404 not_found if neither", &json!([path_param("hash", "blake3 of the signed transaction bytes, hex")]), "the transaction's status", "TxStatus") },
            "/v1/txs/{hash}/proof": { "get": op("A committed transaction's proof bundle: its Merkle proof against the certified tx_root, and its receipt's against the next block's certified prev_receipts_hash (receipt null, with receipt_pending, until that block commits). 403 forbidden for a caller who may not see the transaction, and for anyone but a supervisor asking for a hash that is not committed; 404 not_found (supervisors) when not committed", &json!([path_param("hash", "blake3 of the signed transaction bytes, hex")]), "the bundle", "TxProofBundle") },
            "/v1/blocks/latest": { "get": op("The latest committed block", &json!([]), "header, transactions, certificate", "Block") },
            "/v1/blocks/{height}": { "get": op("A committed block", &json!([path_param("height", "block height")]), "header, transactions, certificate", "Block") },
            "/v1/status": { "get": op("Node status", &json!([]), "chain id, height, latest block, validators, peers, version", "Status") },
            "/v1/state/{kind}": { "get": op("List objects of a kind", &json!([kind, query("after", "cursor from the previous page (hex of a state key, at most 1 KiB; 400 otherwise)", "string"), query("limit", "page size (max 500)", "integer")]), "items and the next cursor", "StateList") },
            "/v1/state/{kind}/{id}": { "get": op("One object, optionally with a Merkle proof", &json!([kind, path_param("id", "object id"), query("prove", "include the proof, header and certificate", "boolean"), query("height", "prove at this version", "integer")]), "the object", "StateObject") },
            "/v1/events": { "get": {
                "summary": "Server-sent events: block, tx, policy_decision, and contract event kinds such as grant.consumed; resume with from_height",
                "description": "A subscriber that falls behind by more than rpc.subscriber_buffer_bytes of events, or misses blocks, gets a final `lagged` event {error: {code: lagged, message}, resume_from_height} and the stream ends; reconnect with from_height set to it (events of that height already received come again, with the same id). A comment is sent every 15 s on a quiet stream. At most rpc.max_subscribers streams at once (503).",
                "parameters": [query("from_height", "replay from this block height, then follow live; at most 16 past the tip (400 beyond)", "integer"), query("kinds", "comma-separated kinds: block, tx, policy_decision, or family.name for contract events (families: demand, governance, grant, lifecycle, order, params, participant, policy, product, tx, validators); others are refused with 400", "string"), query("participant", "participant key: 64 hex characters (400 otherwise)", "string"), query("product", "product id: 64 hex characters (400 otherwise)", "string"), query("tx_hashes", "add the block's transaction hashes to each block event", "boolean")],
                "responses": { "200": { "description": "an event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } }, "400": err_ref(), "429": err_ref(), "503": err_ref() } } },
            "/v1/validators": { "get": op("The validator set that validates a height: committed heights and the next one (default); later heights are not decided yet (400 bad_height)", &json!([query("height", "the height (default: the next one)", "integer")]), "keys, powers and names", "ValidatorSet") },
            "/v1/validators/pending": { "get": op("Validator-set changes governance scheduled for heights after the next one", &json!([]), "each scheduled set with what it adds and removes", "PendingValidators") },
            "/v1/catalogue": { "get": op("Search the product catalogue by category, grade, domain, provider, price and words; listed products by default. Products the caller may not read (delisted ones are for active participants) are left out. 400 bad_query names a bad parameter, bad_cursor a bad after", &json!([query("category", "data_service, software, report or other", "string"), query("grade", "exactly this grade, 1-4", "integer"), query("grade_max", "at most this grade, 1-4", "integer"), query("domain", "exactly this domain (1-256 bytes)", "string"), query("provider", "the provider's key, 64 hex", "string"), query("price_max", "at most this price, in minor units", "integer"), query("q", "words that must all appear in the name or domain, case-insensitive (1-256 bytes)", "string"), query("listed", "true (default), false or any", "string"), query("after", "the next cursor of the previous page (a product id, 64 hex)", "string"), query("limit", "page size, 1-200 (default 50; 400 outside)", "integer")]), "matching products and the next cursor", "CataloguePage") },
            "/v1/grants/{id}/history": { "get": op("One grant's life: registered (or issued inline), consumed, revoked or expired, and the life-cycle attestations of the data it released, each with its block, time, transaction and the path of the transaction's proof bundle. Refused second uses are not listed (no record names their height; they are grant-rule refusals, not policy decisions): follow the event stream (grant.refused) or count them with /v1/aggregates. 400 bad_id, 403 forbidden (not a party), 404 not_found (supervisors, no such grant)", &json!([path_param("id", "grant id, 64 hex")]), "the history", "GrantHistory") },
            "/v1/aggregates": { "get": op("Counts of transactions, refusals, denied decisions, supervised events and money moved over a height range, a time range, or time buckets; kept up to date as blocks commit (two index reads per range). No parameters: the whole chain. Supervisors only", &json!([query("from_height", "first height counted (default 1)", "integer"), query("to_height", "last height counted (default the last indexed; cut to it)", "integer"), query("from_time_ms", "blocks at or after this time (not with heights)", "integer"), query("to_time_ms", "blocks before this time", "integer"), query("interval_ms", "with from_time_ms and to_time_ms: a series of buckets this long (at least 1000 ms, at most 400 buckets)", "integer")]), "the counts", "Aggregates") },
            "/v1/decisions": { "get": op("Search the policy decisions recorded in receipts, newest first: who asked (principal), on what (product or resource), for what (action) and the outcome. Only decisions whose transaction the caller may read (its parties; supervisors see all). 400 bad_query names a bad parameter, bad_cursor a bad before", &json!([query("principal", "the asking account, 64 hex", "string"), query("product", "a product id, 64 hex (the resource Product::\"<id>\")", "string"), query("resource", "a Cedar resource uid, exactly (not with product)", "string"), query("action", "a Cedar action, exactly, e.g. order or use_grant", "string"), query("outcome", "allowed or denied", "string"), query("from_height", "lowest height searched (default 1)", "integer"), query("to_height", "highest height searched (default the tip)", "integer"), query("before", "the next cursor of the previous page, <height>.<index>", "string"), query("limit", "page size, 1-200 (default 50; 400 outside)", "integer")]), "matching decisions and the next cursor", "DecisionPage") },
            "/v1/evidence": { "get": op("Evidence of validator misbehaviour seen by this node", &json!([]), "hex-encoded evidence", "Evidence") },
            "/v1/openapi.json": { "get": op("This document", &json!([]), "OpenAPI 3.1", "OpenApi") },
            "/health": { "get": op("Liveness", &json!([]), "ok with the height and the age of the last block", "Health") },
            "/metrics": { "get": metrics }
        },
        "components": {
            "responses": { "Error": { "description": catalogue_table(), "content": json_content(&schema_ref("Error")) } },
            "schemas": merge(&[error_schemas(), tx_schemas(), chain_schemas(), kind_schemas()]),
        },
        "x-error-catalogue": CATALOGUE.iter().map(|e| json!({ "code": e.code, "status": e.status, "when": e.when })).collect::<Vec<_>>(),
    });
    // Identity and reads (signed requests, read rules, event shapes): rpc/openapi_auth.rs.
    super::openapi_auth::annotate(&mut doc);
    doc
}

/// Every `$ref` in `v` (for the resolution test).
#[cfg(test)]
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    out.push(x.as_str().unwrap_or_default().to_owned());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_exactly_the_routes() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut in_doc: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        in_doc.sort();
        let mut routes: Vec<(String, String)> =
            super::super::ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        routes.sort();
        assert_eq!(in_doc, routes);
    }

    #[test]
    fn the_limits_are_documented() {
        let doc = document();
        let events = &doc["paths"]["/v1/events"]["get"];
        assert!(events["responses"]["400"].is_object());
        assert!(events["description"].as_str().unwrap().contains("lagged"));
        let info = doc["info"]["description"].as_str().unwrap();
        for word in
            ["too_many_connections", "header_read_timeout_ms", "idle_timeout_ms", "Retry-After"]
        {
            assert!(info.contains(word), "{word}");
        }
        assert!(doc["paths"]["/v1/txs"]["post"]["responses"]["408"].is_object());
        for path in ["/v1/txs", "/v1/txs/batch"] {
            let post = &doc["paths"][path]["post"];
            assert!(post["responses"]["503"].is_object(), "{path}");
            assert!(post["description"].as_str().unwrap().contains("overloaded"), "{path}");
        }
    }

    #[test]
    fn every_ref_resolves_and_every_route_has_a_response_schema() {
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 20, "{all:?}");
        for r in &all {
            let ptr = r.strip_prefix('#').unwrap_or_else(|| panic!("not local: {r}"));
            assert!(doc.pointer(ptr).is_some_and(Value::is_object), "{r} does not resolve");
        }
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, o) in ops.as_object().unwrap() {
                let ok = &o["responses"]["200"]["content"];
                let schema = ok.as_object().and_then(|c| c.values().next()).map(|m| &m["schema"]);
                assert!(schema.is_some_and(Value::is_object), "{method} {path} has no 200 schema");
            }
        }
    }

    #[test]
    fn the_catalogue_is_published_whole() {
        let doc = document();
        let published = doc["x-error-catalogue"].as_array().unwrap();
        assert_eq!(published.len(), CATALOGUE.len());
        let table = doc["components"]["responses"]["Error"]["description"].as_str().unwrap();
        let codes = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap();
        for e in CATALOGUE {
            assert!(table.contains(&format!("| `{}` | {} |", e.code, e.status)), "{}", e.code);
            assert!(codes.contains(&json!(e.code)), "{}", e.code);
        }
    }
}

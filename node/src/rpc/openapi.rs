//! The OpenAPI 3.1 document served at `/v1/openapi.json`. A test checks that it lists exactly
//! the routes in [`super::ROUTES`], so the document cannot drift from the router.

use serde_json::{Value, json};

fn err_responses() -> Value {
    let e = json!({ "$ref": "#/components/responses/Error" });
    json!({ "400": e, "404": e, "408": e, "409": e, "413": e, "429": e, "503": e })
}

fn op(summary: &str, params: &Value, ok: &str) -> Value {
    let mut responses = err_responses();
    responses["200"] = json!({ "description": ok, "content": { "application/json": {} } });
    json!({ "summary": summary, "parameters": params, "responses": responses })
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": desc, "schema": { "type": "string" } })
}

fn query(name: &str, desc: &str, ty: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": { "type": ty } })
}

/// The document.
pub fn document() -> Value {
    let wait = query("wait", "admission | check (default) | commit", "string");
    let timeout =
        query("timeout_ms", "with wait=commit: how long to wait (capped by config)", "integer");
    let mut submit =
        op("Submit one signed transaction", &json!([wait, timeout]), "committed (wait=commit)");
    submit["requestBody"] = json!({
        "required": true,
        "content": {
            "application/json": { "schema": { "type": "object", "required": ["tx"],
                "properties": { "tx": { "type": "string", "description": "hex of the SignedTransaction protobuf" } } } },
            "application/x-protobuf": { "schema": { "type": "string", "format": "binary" } }
        }
    });
    submit["responses"]["202"] = json!({ "description": "admitted or checked; not yet committed" });
    let mut batch = op(
        "Submit up to rpc.max_batch_txs transactions",
        &json!([query("wait", "admission | check", "string")]),
        "one result per transaction",
    );
    batch["requestBody"] = json!({ "required": true, "content": {
        "application/json": { "schema": {
            "type": "object", "required": ["txs"], "properties": { "txs": { "type": "array", "items": { "type": "string", "description": "hex of a signed transaction" } } } } },
        "application/x-protobuf": { "schema": { "type": "string", "format": "binary",
            "description": "a dpx.node.v1.TxBatch message (repeated bytes txs = 1): no hex, for high-rate clients" } } } });
    let kind = path_param(
        "kind",
        "participants, products, demands, responses, orders, grants, usage, subjects, policies, proposals, accounts, attestations",
    );
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "dpx node RPC", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Submit signed transactions, read blocks and state (with Merkle proofs), follow events. Limits (all in the [rpc] config): per-IP request rate (429 with Retry-After); a request's body and answer within request_timeout_ms (408; wait=commit may wait commit_wait_max_ms more); open connections in total and per IP (over either, the connection gets 503 too_many_connections and is closed); a connection must send its request headers within header_read_timeout_ms and is closed after idle_timeout_ms without a request, or of not reading a response." },
        "paths": {
            "/v1/txs": { "post": submit },
            "/v1/txs/batch": { "post": batch },
            "/v1/txs/{hash}": { "get": op("A committed transaction and its receipt", &json!([path_param("hash", "blake3 of the signed transaction bytes, hex")]), "the transaction") },
            "/v1/blocks/latest": { "get": op("The latest committed block", &json!([]), "header, transactions, certificate") },
            "/v1/blocks/{height}": { "get": op("A committed block", &json!([path_param("height", "block height")]), "header, transactions, certificate") },
            "/v1/status": { "get": op("Node status", &json!([]), "chain id, height, latest block, validators, peers, version") },
            "/v1/state/{kind}": { "get": op("List objects of a kind", &json!([kind, query("after", "cursor from the previous page (hex of a state key, at most 1 KiB; 400 otherwise)", "string"), query("limit", "page size (max 500)", "integer")]), "items and the next cursor") },
            "/v1/state/{kind}/{id}": { "get": op("One object, optionally with a Merkle proof", &json!([kind, path_param("id", "object id"), query("prove", "include the proof, header and certificate", "boolean"), query("height", "prove at this version", "integer")]), "the object") },
            "/v1/events": { "get": {
                "summary": "Server-sent events: block, tx, policy_decision, and contract event kinds such as grant.consumed; resume with from_height",
                "description": "A subscriber that falls behind by more than rpc.subscriber_buffer_bytes of events, or misses blocks, gets a final `lagged` event {error: {code: lagged, message}, resume_from_height} and the stream ends; reconnect with from_height set to it (events of that height already received come again, with the same id). A comment is sent every 15 s on a quiet stream. At most rpc.max_subscribers streams at once (503).",
                "parameters": [query("from_height", "replay from this block height, then follow live; at most 16 past the tip (400 beyond)", "integer"), query("kinds", "comma-separated kinds: block, tx, policy_decision, or family.name for contract events (families: demand, governance, grant, lifecycle, order, params, participant, policy, product, tx, validators); others are refused with 400", "string"), query("participant", "participant key: 64 hex characters (400 otherwise)", "string"), query("product", "product id: 64 hex characters (400 otherwise)", "string"), query("tx_hashes", "add the block's transaction hashes to each block event", "boolean")],
                "responses": { "200": { "description": "an event stream", "content": { "text/event-stream": {} } }, "400": { "$ref": "#/components/responses/Error" }, "429": { "$ref": "#/components/responses/Error" }, "503": { "$ref": "#/components/responses/Error" } } } },
            "/v1/evidence": { "get": op("Evidence of validator misbehaviour seen by this node", &json!([]), "hex-encoded evidence") },
            "/v1/openapi.json": { "get": op("This document", &json!([]), "OpenAPI 3.1") },
            "/health": { "get": op("Liveness", &json!([]), "ok with the height and the age of the last block") },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition", "content": { "text/plain": {} } } } } }
        },
        "components": { "responses": { "Error": { "description": "an error", "content": { "application/json": { "schema": {
            "type": "object", "properties": { "error": { "type": "object", "properties": {
                "code": { "type": "string" }, "message": { "type": "string" } } } } } } } } } }
    });
    // Identity and reads (signed requests, read rules, event shapes): rpc/openapi_auth.rs.
    super::openapi_auth::annotate(&mut doc);
    doc
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
    }
}

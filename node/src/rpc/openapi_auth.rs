//! The OpenAPI document's parts about identity and reads: the request-signature security
//! scheme, each route's read rule (401 / 403 answers), the `Last-Event-ID` header and the
//! event payload shapes. Applied on top of [`super::openapi::document`].

use serde_json::{Value, json};

/// Each route's read rule, as the document states it.
const READ_RULES: &[(&str, &str, &str)] = &[
    ("post", "/v1/txs", "Anyone may submit; the transaction's own signature is what counts."),
    ("post", "/v1/txs/batch", "Anyone may submit; each transaction's own signature counts."),
    (
        "get",
        "/v1/txs/{hash}",
        "Status, height and index for anyone (block listings show every hash); the transaction and its receipt only for its parties (signer, keys it names, parties to the objects it names and to its receipt's events) and supervisors; others get \"hidden\": true.",
    ),
    (
        "get",
        "/v1/txs/{hash}/proof",
        "Only for the transaction's parties and supervisors (the rule of /v1/txs/{hash}); anyone else gets 403 forbidden, and so does anyone but a supervisor asking for a hash that is not committed (supervisors get 404).",
    ),
    (
        "get",
        "/v1/blocks/latest",
        "Header and certificate for anyone; each transaction's bytes and decoded form only for its parties and supervisors, others see {hash, hidden: true}.",
    ),
    (
        "get",
        "/v1/blocks/{height}",
        "Header and certificate for anyone; each transaction's bytes and decoded form only for its parties and supervisors, others see {hash, hidden: true}.",
    ),
    ("get", "/v1/status", "Public (aggregate counts)."),
    (
        "get",
        "/v1/state/{kind}",
        "Filtered, never refused: only the objects the caller may read (a page may be short; continue while next is not null). Public: participants, accounts, proposals, policies, listed products. Active participants: demands, delisted products. Parties: grants (subject, consumer), usage (subject, consumer, provider), orders (buyer, provider, grant subject), responses (responder, poster), attestations. Supervisors (the Cedar action read; by default regulators and auditors): everything.",
    ),
    (
        "get",
        "/v1/state/{kind}/{id}",
        "As for lists; an object the caller may not read is 403 forbidden whether or not it exists, and so is its proof (a missing grant, usage receipt, order, response or attestation is 403 to all but supervisors). height without prove=true is 400.",
    ),
    (
        "get",
        "/v1/events",
        "Block events for anyone; a transaction's events (tx, contract events, policy_decision) only for its parties and supervisors, decided when the stream opens.",
    ),
    ("get", "/v1/evidence", "Public."),
    (
        "get",
        "/v1/catalogue",
        "Listed products are public; a delisted one is shown to active participants and supervisors only (the rule of /v1/state/products).",
    ),
    (
        "get",
        "/v1/grants/{id}/history",
        "The grant's data subject, its consumer and supervisors (the rule of /v1/state/grants/{id}); anyone else gets 403 forbidden whether or not it exists.",
    ),
    (
        "get",
        "/v1/aggregates",
        "Supervisors only (403 forbidden for anyone else): counts per block would tell what kind of transaction a one-transaction block holds.",
    ),
    (
        "get",
        "/v1/decisions",
        "A decision is shown to whoever may read its transaction: the transaction's parties and supervisors (the rule of /v1/txs/{hash}); others' decisions are left out of the page, as if absent.",
    ),
    ("get", "/v1/validators", "Public (certificates name the same keys)."),
    ("get", "/v1/validators/pending", "Public (governance decisions are public)."),
    ("get", "/v1/openapi.json", "Public."),
    ("get", "/health", "Public."),
    ("get", "/metrics", "Public (operators restrict it at the network level)."),
];

/// Add the security scheme, the read rules, `Last-Event-ID` and the event shapes to `doc`.
pub fn annotate(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "dpxSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "Signature",
            "description": "HTTP Message Signatures (RFC 9421), dpx profile (SPEC.md §14): Signature-Input: dpx=(\"@method\" \"@path\" \"@query\" [\"content-digest\"]);created=<unix s>;nonce=\"<16-64 of [A-Za-z0-9_-]>\";keyid=\"<64 lowercase hex>\";alg=\"dpx-ed25519-blake3\", Signature: dpx=:<base64>:, and Content-Digest: sha-256=:<base64>: with a body. The ed25519 signature covers blake3(u64le(len(\"dpx/rpc-request/v1\")) || \"dpx/rpc-request/v1\" || u64le(len(chain_id)) || chain_id || u64le(len(base)) || base), base being the RFC 9421 signature base. created within rpc.auth_max_skew_secs (60) of the node's clock; each (keyid, nonce) once. Unsigned requests are anonymous. Browsers' EventSource cannot set these headers."
        }
    });
    // Signing is optional everywhere: anonymous requests get the public view.
    doc["security"] = json!([{}, { "dpxSignature": [] }]);
    doc["components"]["responses"]["Unauthenticated"] = json!({
        "description": "a signed request failed a check (the message names it): headers malformed, label not dpx, components or parameters wrong, alg wrong, key invalid, created outside the skew or expires passed, Content-Digest mismatch, signature invalid, or the nonce already used",
        "headers": { "WWW-Authenticate": { "schema": { "type": "string", "const": "Signature realm=\"dpx\"" } } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    });
    doc["components"]["responses"]["Forbidden"] = json!({
        "description": "forbidden: the read policy does not let the caller see this object; whether it exists is not disclosed",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    });
    doc["components"]["schemas"]["Error"] = json!({
        "type": "object", "required": ["error"],
        "properties": { "error": { "type": "object", "required": ["code", "message"],
            "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } }
    });
    for (method, path, rule) in READ_RULES {
        // `get_mut`, not indexing: indexing would add the routes it does not find.
        let Some(op) =
            doc.get_mut("paths").and_then(|p| p.get_mut(*path)).and_then(|o| o.get_mut(*method))
        else {
            continue;
        };
        op["x-read-policy"] = json!(rule);
        op["responses"]["401"] = json!({ "$ref": "#/components/responses/Unauthenticated" });
        if *path == "/v1/state/{kind}/{id}" {
            op["responses"]["403"] = json!({ "$ref": "#/components/responses/Forbidden" });
        }
    }
    let Some(events) =
        doc.get_mut("paths").and_then(|p| p.get_mut("/v1/events")).and_then(|o| o.get_mut("get"))
    else {
        return;
    };
    if let Some(params) = events["parameters"].as_array_mut() {
        params.push(json!({
            "name": "Last-Event-ID", "in": "header", "required": false,
            "description": "resume strictly after this event id H.N (cursors compare as the integer pair (H, N)); wins over from_height; malformed: 400 bad_cursor. A standard EventSource sends it when it reconnects.",
            "schema": { "type": "string", "pattern": "^[0-9]{1,20}\\.[0-9]{1,20}$" }
        }));
    }
    events["responses"]["200"]["content"]["text/event-stream"]["x-events"] = event_shapes();
    events["responses"]["401"] = json!({ "$ref": "#/components/responses/Unauthenticated" });
    doc["components"]["schemas"]["Event"] = event_shapes();
}

/// The payloads of the event stream: every SSE message has `event: <kind>`, `id: H.N` (except
/// `lagged`) and `data: <one JSON line>`.
fn event_shapes() -> Value {
    let cursor = json!({ "type": "string", "description": "H.N, the event's id" });
    json!({
        "description": "data of each SSE message; event: is the kind, id: the cursor. Common fields: kind, height, cursor, tx_hash (transaction events), data.",
        "oneOf": [
            { "title": "block", "type": "object", "properties": {
                "kind": { "const": "block" }, "height": { "type": "integer" }, "cursor": cursor,
                "data": { "type": "object", "properties": {
                    "id": { "type": "string", "description": "block id, hex" },
                    "time_ms": { "type": "integer" }, "proposer": { "type": "string" },
                    "txs": { "type": "integer" },
                    "tx_hashes": { "type": "array", "items": { "type": "string" }, "description": "with tx_hashes=true" } } } } },
            { "title": "tx", "type": "object", "properties": {
                "kind": { "const": "tx" }, "height": { "type": "integer" }, "cursor": cursor,
                "tx_hash": { "type": "string" },
                "data": { "type": "object", "description": "the receipt: tx_hash, code (ok, invalid, denied, failed, undecodable), reason, events [{kind, attrs: [{key, value}]}], decision" } } },
            { "title": "contract event", "type": "object", "properties": {
                "kind": { "type": "string", "description": "family.name, e.g. grant.consumed, order.placed, participant.admitted" },
                "height": { "type": "integer" }, "cursor": cursor, "tx_hash": { "type": "string" },
                "data": { "type": "object", "description": "{kind, attrs: [{key, value}]}: values are decimal numbers, hex ids or keys, or text" } } },
            { "title": "policy_decision", "type": "object", "properties": {
                "kind": { "const": "policy_decision" }, "height": { "type": "integer" }, "cursor": cursor,
                "tx_hash": { "type": "string" },
                "data": { "type": "object", "description": "action, principal, resource, allowed, policy_version, policy_hash, determining, reason" } } },
            { "title": "lagged", "type": "object", "description": "the last message of a stream that fell behind; no id", "properties": {
                "error": { "type": "object", "properties": { "code": { "const": "lagged" }, "message": { "type": "string" } } },
                "resume_from_height": { "type": "integer" } } }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_states_its_read_rule_and_the_scheme_is_there() {
        let doc = super::super::openapi::document();
        for (m, p) in super::super::ROUTES {
            assert!(
                READ_RULES.iter().any(|(rm, rp, _)| rm == m && rp == p),
                "{m} {p} has no read rule"
            );
            assert!(doc["paths"][*p][*m]["x-read-policy"].is_string(), "{m} {p}");
            assert!(doc["paths"][*p][*m]["responses"]["401"].is_object(), "{m} {p}");
        }
        assert_eq!(doc["components"]["securitySchemes"]["dpxSignature"]["name"], "Signature");
        let events = &doc["paths"]["/v1/events"]["get"];
        let params = events["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "Last-Event-ID"));
        assert!(doc["components"]["schemas"]["Event"]["oneOf"].as_array().unwrap().len() >= 5);
    }
}

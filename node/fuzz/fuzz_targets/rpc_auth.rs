//! The signed-request headers a stranger sends (`Signature-Input`, `Signature`,
//! `Content-Digest`, `Last-Event-ID`): none may panic, and a header that parses must give back
//! what it holds (the signature base's `@signature-params` is the text after `dpx=`).
#![no_main]

use libfuzzer_sys::fuzz_target;

use dpx_node::rpc::auth;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Three header values separated by newlines (a newline cannot occur inside one).
    let mut parts = text.splitn(3, '\n');
    let input = parts.next().unwrap_or_default();
    let sig = parts.next().unwrap_or_default();
    let digest = parts.next().unwrap_or_default();
    if let Ok((params, rest)) = auth::parse_signature_input(input) {
        assert_eq!(Some(rest), input.strip_prefix("dpx="));
        assert!(params.components.len() == 3 || params.components.len() == 4);
        assert!((16..=64).contains(&params.nonce.len()));
    }
    let _ = auth::parse_signature(sig);
    let _ = dpx_node::rpc::parse_event_cursor(text);
    // The whole check over a request built from the three values: never a panic.
    let mut headers = axum_http::HeaderMap::new();
    for (name, value) in
        [("signature-input", input), ("signature", sig), ("content-digest", digest)]
    {
        if let Ok(v) = axum_http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    let uri = axum_http::Uri::from_static("/v1/state/grants?limit=1");
    let _ = auth::verify_request("GET", &uri, &headers, data, "dpx-fuzz", 1_764_489_600, 60);
});

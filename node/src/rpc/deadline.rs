//! The request deadline: a request's body must arrive, and its answer be ready, within
//! `request_timeout_ms` (408 after it); only a `wait=commit` submission may go on waiting, up
//! to `commit_wait_max_ms` more, for its commit.
//!
//! The body is read here, under the deadline and the size limit, before the handler runs, so
//! a client that stalls half-way through a body is answered at `request_timeout_ms` whatever
//! the route (the old single timeout covered the longest commit wait, 31 s by default).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio::time::Instant;

use super::ApiError;

/// The deadlines and the body limit, from the `[rpc]` config.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub request: Duration,
    pub commit_wait_max: Duration,
    pub max_body_bytes: usize,
}

fn timed_out(what: &str, limit: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        format!("{what} within request_timeout_ms ({} ms)", limit.as_millis()),
    )
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {max} bytes"),
    )
}

/// Whether the request asks to wait for its commit (`?wait=commit`).
fn waits_for_commit(uri: &axum::http::Uri) -> bool {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .is_ok_and(|Query(q)| q.get("wait").is_some_and(|w| w == "commit"))
}

/// Read the whole body, refusing it as soon as it passes `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
        if buf.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// An answer after which the connection closes: the rest of the request body was not read,
/// so the connection cannot carry another request, and the client must not pool it.
fn closing(e: ApiError) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    resp
}

pub async fn deadline(State(d): State<Deadlines>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_deadline = start + d.request;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > d.max_body_bytes as u64) {
        return closing(too_large(d.max_body_bytes));
    }
    let commit = waits_for_commit(req.uri());
    let (parts, body) = req.into_parts();
    let bytes =
        match tokio::time::timeout_at(request_deadline, read_body(body, d.max_body_bytes)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return closing(e),
            Err(_) => return closing(timed_out("the request body did not arrive", d.request)),
        };
    let req = Request::from_parts(parts, Body::from(bytes));
    let answer_deadline =
        if commit { request_deadline + d.commit_wait_max } else { request_deadline };
    match tokio::time::timeout_at(answer_deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => timed_out("the request was not answered", d.request).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_waits_are_recognised_in_any_spelling_of_the_query() {
        let yes =
            ["/v1/txs?wait=commit", "/v1/txs?timeout_ms=5&wait=commit", "/v1/txs?wait=c%6Fmmit"];
        for u in yes {
            assert!(waits_for_commit(&u.parse().unwrap()), "{u}");
        }
        for u in ["/v1/txs", "/v1/txs?wait=check", "/v1/txs?wait=commitx", "/v1/txs?%zz"] {
            assert!(!waits_for_commit(&u.parse().unwrap()), "{u}");
        }
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_while_reading() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from(vec![1; 6])), Ok(Bytes::from(vec![2; 6]))];
        let body = Body::from_stream(futures::stream::iter(chunks));
        let e = read_body(body, 10).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read_body(Body::from(vec![7u8; 10]), 10).await.unwrap();
        assert_eq!(ok.len(), 10);
    }
}

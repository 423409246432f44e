//! Server-sent events: a byte-level line parser (pure, chunk boundaries anywhere) and the
//! decoding of the node's `tx` / `block` / `lagged` events.
//!
//! The wire format (WHATWG): lines `event: <kind>`, `id: <cursor>`, `data: <json>`, comment
//! lines starting with `:`, and a blank line that ends one message. The node sends one `data`
//! line per event; several are joined with `\n` as the standard says.

use dpx_crypto::Hash;
use serde::Deserialize;

/// Longest line accepted; the node's events are a few KiB at most.
const LINE_BYTES_MAX: usize = 4 << 20;

/// One complete SSE message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseMessage {
    /// `message` when the server named no event type.
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Incremental parser: feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the messages completed by them.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseMessage>, String> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(m) = self.line_done(&line) {
                out.push(m);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > LINE_BYTES_MAX {
            return Err(format!("an SSE line longer than {LINE_BYTES_MAX} bytes"));
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseMessage> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            let id = self.id.take();
            // A message with no data is not dispatched (per the standard).
            return data.map(|data| SseMessage {
                event: event.unwrap_or_else(|| "message".to_owned()),
                id,
                data,
            });
        }
        if line[0] == b':' {
            return None; // comment / keep-alive
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&*text, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // `retry` and unknown fields are ignored
        }
        None
    }
}

/// What the load generator needs from one node event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A committed transaction; `code` is its receipt code when the chain executes
    /// transactions (`ok`, `invalid`, ...).
    Tx { height: u64, hash: Hash, code: Option<String> },
    /// A committed block: header time, transaction count, and the transactions' hashes when
    /// subscribed with `tx_hashes=true` (empty otherwise).
    Block { height: u64, time_ms: u64, txs: u64, tx_hashes: Vec<Hash> },
    /// The subscriber fell behind; resume from this height.
    Lagged { resume_from_height: u64 },
    /// Another kind (filtered out by `kinds=tx,block`, but tolerated).
    Other,
}

#[derive(Deserialize)]
struct EventJson {
    kind: String,
    height: u64,
    #[serde(default)]
    tx_hash: Option<String>,
    #[serde(default)]
    data: Option<DataJson>,
}

/// Only the fields we read; serde skips the rest of the receipt without building it.
#[derive(Deserialize, Default)]
struct DataJson {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    time_ms: Option<u64>,
    #[serde(default)]
    txs: Option<u64>,
    #[serde(default)]
    tx_hashes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct LaggedJson {
    resume_from_height: u64,
}

/// Decode one SSE message from `/v1/events`.
pub fn decode_event(m: &SseMessage) -> Result<NodeEvent, String> {
    if m.event == "lagged" {
        let l: LaggedJson =
            serde_json::from_str(&m.data).map_err(|e| format!("lagged event: {e}"))?;
        return Ok(NodeEvent::Lagged { resume_from_height: l.resume_from_height });
    }
    let e: EventJson = if let Ok(e) = serde_json::from_str(&m.data) {
        e
    } else {
        // `data` of an unexpected shape (not an object): read the envelope alone.
        let v: serde_json::Value =
            serde_json::from_str(&m.data).map_err(|e| format!("event data: {e}"))?;
        EventJson {
            kind: v["kind"].as_str().unwrap_or_default().to_owned(),
            height: v["height"].as_u64().ok_or("event without height")?,
            tx_hash: v["tx_hash"].as_str().map(str::to_owned),
            data: None,
        }
    };
    let data = e.data.unwrap_or_default();
    Ok(match e.kind.as_str() {
        "tx" => {
            let hex = e.tx_hash.ok_or("tx event without tx_hash")?;
            let hash = hex.parse::<Hash>().map_err(|err| format!("tx_hash {hex:?}: {err}"))?;
            NodeEvent::Tx { height: e.height, hash, code: data.code }
        }
        "block" => NodeEvent::Block {
            height: e.height,
            time_ms: data.time_ms.ok_or("block event without time_ms")?,
            txs: data.txs.unwrap_or(0),
            tx_hashes: data
                .tx_hashes
                .unwrap_or_default()
                .iter()
                .map(|h| h.parse::<Hash>().map_err(|err| format!("tx_hashes {h:?}: {err}")))
                .collect::<Result<_, _>>()?,
        },
        _ => NodeEvent::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: block\nid: 5.0\ndata: {\"kind\":\"block\",\"height\":5,\"cursor\":\"5.0\",\"data\":{\"id\":\"ab\",\"time_ms\":1700000000123,\"proposer\":\"cd\",\"txs\":2}}\n\n: keep-alive\n\nevent: tx\r\nid: 5.1\r\ndata: {\"kind\":\"tx\",\"height\":5,\"cursor\":\"5.1\",\"tx_hash\":\"0101010101010101010101010101010101010101010101010101010101010101\",\"data\":{\"tx_hash\":\"01\",\"code\":\"ok\",\"reason\":\"\",\"events\":[{\"kind\":\"x\",\"attrs\":[]}],\"decision\":null}}\r\n\r\nevent: lagged\ndata: {\"resume_from_height\":6}\n\n";

    fn all_at_once() -> Vec<SseMessage> {
        SseParser::new().feed(STREAM.as_bytes()).unwrap()
    }

    #[test]
    fn parses_a_stream_in_one_chunk() {
        let m = all_at_once();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].event, "block");
        assert_eq!(m[0].id.as_deref(), Some("5.0"));
        assert_eq!(m[1].event, "tx");
        assert_eq!(m[2].event, "lagged");
        assert_eq!(
            decode_event(&m[0]).unwrap(),
            NodeEvent::Block { height: 5, time_ms: 1_700_000_000_123, txs: 2, tx_hashes: vec![] }
        );
        assert_eq!(
            decode_event(&m[1]).unwrap(),
            NodeEvent::Tx { height: 5, hash: Hash([1; 32]), code: Some("ok".into()) }
        );
        assert_eq!(decode_event(&m[2]).unwrap(), NodeEvent::Lagged { resume_from_height: 6 });
    }

    #[test]
    fn any_chunking_gives_the_same_messages() {
        let want = all_at_once();
        let bytes = STREAM.as_bytes();
        for size in [1, 2, 3, 7, 64, 333] {
            let mut p = SseParser::new();
            let mut got = Vec::new();
            for c in bytes.chunks(size) {
                got.extend(p.feed(c).unwrap());
            }
            assert_eq!(got, want, "chunk size {size}");
        }
    }

    #[test]
    fn multi_line_data_and_fields_without_space() {
        let mut p = SseParser::new();
        let m = p.feed(b"event:x\ndata:a\ndata: b\nretry: 10\n\n").unwrap();
        assert_eq!(m, vec![SseMessage { event: "x".into(), id: None, data: "a\nb".into() }]);
        // No data: nothing dispatched; a message without an event is a "message".
        assert!(p.feed(b"event: y\n\n").unwrap().is_empty());
        assert_eq!(p.feed(b"data: z\n\n").unwrap()[0].event, "message");
    }

    #[test]
    fn consensus_only_tx_without_receipt_and_bad_input() {
        let m = SseMessage {
            event: "tx".into(),
            id: None,
            data: format!(
                "{{\"kind\":\"tx\",\"height\":3,\"cursor\":\"3.1\",\"tx_hash\":\"{}\",\"data\":null}}",
                "02".repeat(32)
            ),
        };
        assert_eq!(
            decode_event(&m).unwrap(),
            NodeEvent::Tx { height: 3, hash: Hash([2; 32]), code: None }
        );
        let odd = SseMessage { data: m.data.replace("null", "\"opaque\""), ..m.clone() };
        assert!(matches!(decode_event(&odd).unwrap(), NodeEvent::Tx { code: None, .. }));
        let bad = SseMessage { data: "{\"kind\":\"tx\",\"height\":3}".into(), ..m };
        assert!(decode_event(&bad).is_err());
        assert!(SseParser::new().feed(&vec![b'a'; LINE_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn block_event_with_tx_hashes() {
        let data = format!(
            "{{\"kind\":\"block\",\"height\":9,\"data\":{{\"time_ms\":5,\"txs\":2,\"tx_hashes\":[\"{}\",\"{}\"]}}}}",
            "04".repeat(32),
            "05".repeat(32)
        );
        let m = SseMessage { event: "block".into(), id: None, data };
        assert_eq!(
            decode_event(&m).unwrap(),
            NodeEvent::Block {
                height: 9,
                time_ms: 5,
                txs: 2,
                tx_hashes: vec![Hash([4; 32]), Hash([5; 32])]
            }
        );
        let bad = SseMessage { data: m.data.replace(&"05".repeat(32), "zz"), ..m };
        assert!(decode_event(&bad).is_err());
    }
}

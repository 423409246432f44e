//! The console's page frame: layout, style, the live-update script, the security headers, and
//! small renderers shared by the pages. Everything is inside the binary; nothing is fetched
//! from elsewhere (the pages work offline).

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use dpx_crypto::PublicKey;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::Digest as _;

use super::Who;

/// The style sheet (inline: one request per page, no asset routes).
const STYLE: &str = r"
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#d9dee5; --accent:#1f5fa8; --bg:#f6f7f9; --ok:#2e7d32; --warn:#b26a00; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#14213d; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:center; flex-wrap:wrap; }
header a { color:#dfe7f3; text-decoration:none; }
header a.on { color:#fff; font-weight:600; border-bottom:2px solid #fca311; }
header .who { margin-left:auto; font-size:13px; }
header form { display:inline; }
header button { background:none; border:0; color:#fca311; cursor:pointer; font:inherit; text-decoration:underline; padding:0; }
main { padding:16px 24px 40px; max-width:1200px; }
h1 { font-size:20px; margin:8px 0 12px; } h2 { font-size:16px; margin:22px 0 8px; }
section.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 16px; margin:12px 0; }
table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; }
code, .mono { font-family:ui-monospace, monospace; font-size:12px; }
.muted { color:var(--muted); } .ok { color:var(--ok); } .warn { color:var(--warn); } .bad { color:var(--bad); }
.note { color:var(--muted); font-size:12px; margin:6px 0; }
.stats { display:flex; gap:16px; flex-wrap:wrap; } .stat { background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px 14px; min-width:130px; }
.stat b { display:block; font-size:20px; }
.hidden-box { border:1px dashed var(--bad); color:var(--bad); padding:10px 14px; border-radius:6px; background:#fff; }
svg text { font:11px system-ui, sans-serif; fill:var(--muted); }
figure { margin:0; }
#live-status { font-size:12px; color:#9fb3c8; }
form.search label { margin-right:14px; } form.search input, form.search select { font:inherit; }
tr.denied td.outcome { color:var(--bad); font-weight:600; } tr.allowed td.outcome { color:var(--ok); }
.proof { font-size:12px; color:var(--muted); } .proof.ok { color:var(--ok); } .proof.bad { color:var(--bad); font-weight:600; }
";

/// Live updates: when a block commits (the node's public event stream), fetch this page again
/// and swap its `#live` part in place; no reload, so the reader keeps their scroll and state.
/// One fetch at a time; a block that commits meanwhile triggers one more. The stream is closed
/// when the page is left.
const SCRIPT: &str = r"
(function () {
  var status = document.getElementById('live-status');
  if (!window.EventSource || !document.getElementById('live')) { return; }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var fresh = doc.getElementById('live'), old = document.getElementById('live');
        if (fresh && old) { old.replaceWith(document.adoptNode(fresh)); }
        document.dispatchEvent(new Event('dpx:live'));
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var es = null;
  function open() {
    es = new EventSource('/v1/events?kinds=block');
    es.addEventListener('block', function (e) {
      var h = ''; try { h = JSON.parse(e.data).height; } catch (x) {}
      if (status) { status.textContent = 'live: block ' + h; }
      refresh();
    });
    es.onerror = function () { if (status) { status.textContent = 'live: reconnecting'; } };
  }
  // A page left behind (or kept in the back-forward cache) must not hold its stream: the
  // browser has few connections per host, and the node few subscriber slots.
  window.addEventListener('pagehide', function () { if (es) { es.close(); es = null; } });
  window.addEventListener('pageshow', function (e) { if (!es) { open(); if (e.persisted) { refresh(); } } });
  open();
})();
";

/// The proof verifier (SPEC.md §11.2, §11.3 in JavaScript; tested against the vectors by
/// `scripts/console-js-test.sh`), inlined in the pages that check proofs.
pub const VERIFY_JS: &str = include_str!("verify.js");

/// On a page with `[data-tx]` elements: fetch each transaction's proof bundle and the genesis
/// validator set from the console, check the bundle here with `dpxVerify`, and write the verdict
/// into the element (`data-verified` = `yes` or `no`). Again after each live update (the
/// verdicts of bundles whose receipt was already certified are kept).
pub const PROOF_SCRIPT: &str = r"
(function () {
  var done = {}, genesis = null;
  function getJSON(url) {
    return fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error((j.error && j.error.message) || ('HTTP ' + r.status)); }
        return j;
      });
    });
  }
  function trustRoot() {
    if (!genesis) { genesis = getJSON('/console/proofs/genesis'); }
    return genesis;
  }
  function show(el, v) {
    el.textContent = v.text;
    el.className = 'proof ' + (v.ok ? 'ok' : 'bad');
    el.setAttribute('data-verified', v.ok ? 'yes' : 'no');
  }
  function check(el) {
    var h = el.getAttribute('data-tx');
    if (done[h]) { show(el, done[h]); return; }
    el.textContent = 'checking…';
    trustRoot().then(function (g) {
      return getJSON('/console/proofs/tx/' + h).then(function (b) {
        return window.dpxVerify.verifyTxBundle(b, g.validators, g.chain_id);
      });
    }).then(function (r) {
      var v = { ok: true, text: 'verified in this browser against the trust root below: in block ' + r.height + ' (' +
        r.blockPower[0] + ' of ' + r.blockPower[1] + ' voting power signed)' + (r.receiptPower
          ? '; its receipt certified by block ' + (r.height + 1n) + ' (' + r.receiptPower[0] +
            ' of ' + r.receiptPower[1] + ')'
          : '; its receipt is not certified yet') };
      if (r.receiptPower) { done[h] = v; }
      show(el, v);
    }, function (e) {
      show(el, { ok: false, text: 'NOT verified: ' + ((e && e.message) || e) });
    });
  }
  function run() {
    document.querySelectorAll('[data-tx]').forEach(check);
    var t = document.getElementById('trust-root');
    if (t) {
      trustRoot().then(function (g) { t.textContent = g.validator_set_hash; },
        function (e) { t.textContent = 'unavailable: ' + e.message; });
    }
  }
  document.addEventListener('dpx:live', run);
  run();
})();
";

/// The Content-Security-Policy: only the console's own scripts and style run (by hash), and the
/// page talks only to its node. An injected `<script>` would not run even if escaping failed.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let h = |s: &str| {
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
        };
        format!(
            "default-src 'none'; script-src 'sha256-{}' 'sha256-{}' 'sha256-{}'; \
             style-src 'sha256-{}'; connect-src 'self'; img-src 'self' data:; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            h(SCRIPT),
            h(VERIFY_JS),
            h(PROOF_SCRIPT),
            h(STYLE)
        )
    })
}

/// The navigation tabs: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/console", "Chain"),
    ("/console/market", "Market"),
    ("/console/grants", "Grants"),
    ("/console/decisions", "Decisions"),
];

/// A whole page: the frame around `body`, whose changing part the page puts in `#live`.
pub fn page(title: &str, active: &str, who: &Who, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · dpx console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "dpx console" }
                    @for (path, label) in NAV {
                        a href=(path) class=[(active == *path).then_some("on")] { (label) }
                    }
                    span id="live-status" { "live: waiting for a block" }
                    span class="who" id="who" {
                        @match &who.key {
                            Some(_) => {
                                "signed in as " strong { (who.label()) }
                                " · "
                                form method="post" action="/console/logout" {
                                    button type="submit" id="logout" { "sign out" }
                                }
                            }
                            None => {
                                "public view · sign in with "
                                code { "dpx console login --key FILE" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// The response for a rendered page, with the headers every console page carries.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// The box shown where a record is hidden from this viewer.
pub fn hidden(what: &str) -> Markup {
    html! {
        div class="hidden-box" id="hidden" {
            (what) " is not visible to this viewer under the read policy (sign in with the key of "
            "a party to it, or of a supervisor). Whether it exists is not disclosed."
        }
    }
}

/// "showing N of M": the rows shown of the records the viewer may read, and whether the
/// bounded scan saw the whole kind.
pub fn showing(shown: usize, readable: usize, complete: bool, what: &str) -> Markup {
    html! {
        p class="note" {
            @if complete {
                "showing " (shown) " of " (readable) " " (what)
            } @else {
                "showing " (shown) " of " (readable) " " (what) " among the first "
                (super::SCAN_MAX) " records scanned (more exist; counts cover those scanned)"
            }
        }
    }
}

/// A key as a short, linkable label.
pub fn short_key(k: &PublicKey) -> String {
    let h = k.to_hex();
    format!("{}…{}", &h[..8], &h[h.len() - 4..])
}

/// A link to a participant's page, labelled with its name when known.
pub fn participant_link(k: &PublicKey, name: Option<&str>) -> Markup {
    html! {
        a href={ "/console/participants/" (k.to_hex()) } title=(k.to_hex()) {
            @match name { Some(n) => (n), None => span class="mono" { (short_key(k)) } }
        }
    }
}

/// A block time as UTC text.
pub fn time(ms: u64) -> String {
    dpx_contracts::rfc3339_ms(ms).replace('T', " ").trim_end_matches('Z').to_owned() + " UTC"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_hashes_of_the_page_own_script_and_style() {
        let p = csp();
        assert!(p.contains("script-src 'sha256-"), "{p}");
        assert!(!p.contains("unsafe-inline"), "{p}");
        let b64 = |s: &str| {
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
        };
        assert!(p.contains(&b64(SCRIPT)) && p.contains(&b64(STYLE)));
        assert!(p.contains(&b64(VERIFY_JS)) && p.contains(&b64(PROOF_SCRIPT)));
        // The script goes into the page byte for byte, or the hash would not match.
        let html = page("t", "/console", &Who::anonymous(), &html! {}).into_string();
        assert!(html.contains(SCRIPT) && html.contains(STYLE));
    }
}

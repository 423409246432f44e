//! The supervision console in a real browser (headless Chromium over WebDriver) against a real
//! 4-validator cluster with marketplace activity made through the CLI, as an operator would:
//! participants (one with a hostile name), a registrar admitted by governance, an enrolled data
//! subject, a rated provider, a grade-3 product and a grant used once.
//!
//! It opens every page anonymously, signs in as the regulator with the URL `dpx console login`
//! prints, follows the grant, submits a transaction and sees it appear without a reload, and
//! checks that a participant unrelated to the grant cannot see it, that a login URL works
//! once, and that a signed-in key rotated out reads as the public at the next page. A PNG of each page is saved
//! under `$CARGO_TARGET_DIR/console-screenshots/` (or `target/console-screenshots/`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/prereqs.sh installs them); without
//! them the test fails and says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_tests::browser::Browser;
use dpx_tests::{Cluster, dpx};
use serde_json::{Value, json};

const HOSTILE: &str = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">";

/// The cluster and what the scenario made on it.
struct Market {
    c: Cluster,
    rpc: String,
    keys: PathBuf,
    provider: String,
    product: String,
    grant: String,
}

impl Market {
    fn key(&self, who: &str) -> String {
        self.keys.join(format!("{who}.json")).display().to_string()
    }

    fn public(&self, who: &str) -> anyhow::Result<String> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(self.key(who))?)?;
        Ok(v["public_key"].as_str().context("public_key")?.to_owned())
    }

    /// `dpx tx OP ... --key WHO`, committed and accepted; the receipt's attribute `attr`.
    fn tx(&self, who: &str, args: &[&str], attr: Option<&str>) -> anyhow::Result<String> {
        let key = self.key(who);
        // The operation, then --key (clap needs it before the operation's own fields).
        let mut all = vec!["tx", args[0], "--key", &key];
        all.extend_from_slice(&args[1..]);
        all.extend_from_slice(&["--rpc", &self.rpc, "--output", "json"]);
        let v: Value = serde_json::from_str(&dpx(&all)?)?;
        anyhow::ensure!(
            v["status"] == "committed" && v["receipt"]["code"] == "ok",
            "{args:?}: {v}"
        );
        let Some(attr) = attr else { return Ok(String::new()) };
        v["receipt"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["attrs"].as_array().into_iter().flatten())
            .find(|a| a["key"] == attr)
            .and_then(|a| a["value"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no {attr} in {v}"))
    }

    /// `dpx tx OP ... --key WHO`, committed and refused by the policy (the CLI then exits
    /// with 3); the receipt.
    fn tx_denied(&self, who: &str, args: &[&str]) -> anyhow::Result<Value> {
        let key = self.key(who);
        let mut all = vec!["tx", args[0], "--key", &key];
        all.extend_from_slice(&args[1..]);
        all.extend_from_slice(&["--rpc", &self.rpc, "--output", "json"]);
        let out = std::process::Command::new(dpx_tests::dpx_bin()?).args(&all).output()?;
        let v: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)))?;
        anyhow::ensure!(
            out.status.code() == Some(3)
                && v["status"] == "committed"
                && v["receipt"]["code"] == "denied",
            "{args:?} ({}): {v}",
            out.status
        );
        Ok(v["receipt"].clone())
    }

    fn admit(&self, who: &str, name: &str, role: &str) -> anyhow::Result<()> {
        let op = json!({ "key": self.public(who)?, "name": name, "roles": [role] }).to_string();
        self.tx("agency-0", &["admit", "--json", &op], None).map(drop)
    }
}

fn build_market() -> anyhow::Result<Market> {
    let mut c = Cluster::init(4)?;
    c.start_all()?;
    c.wait_height_all(1, Duration::from_mins(2))?;
    let keys = c.chain_dir().join("keys");
    for who in [
        "employer",
        "provider",
        "applicant",
        "regulator",
        "rater",
        "outsider",
        "hostile",
        "registrar",
        "late",
    ] {
        dpx(&["keygen", "--out", &keys.join(format!("{who}.json")).display().to_string()])?;
    }
    let mut m = Market {
        rpc: c.rpc[0].clone(),
        c,
        keys,
        provider: String::new(),
        product: String::new(),
        grant: String::new(),
    };
    for (who, role) in [
        ("employer", "consumer"),
        ("provider", "provider"),
        ("regulator", "regulator"),
        ("rater", "rating_body"),
        ("outsider", "consumer"),
    ] {
        m.admit(who, who, role)?;
    }
    m.admit("hostile", HOSTILE, "consumer")?;
    let action = json!({ "action": { "admit_registrar": { "key": m.public("registrar")?, "name": "Identity Service" } } }).to_string();
    let proposal = m.tx("agency-0", &["propose", "--json", &action], Some("proposal"))?;
    for i in 1..=2 {
        m.tx(&format!("agency-{i}"), &["approve", "--proposal", &proposal], None)?;
    }
    let secret = m.keys.join("registrar.secret");
    std::fs::write(&secret, "11".repeat(32))?;
    let subject = dpx(&[
        "hash",
        "--keyed",
        "--key-file",
        &secret.display().to_string(),
        "110101199003071234",
    ])?
    .trim()
    .to_owned();
    dpx(&[
        "subject",
        "enrol",
        "--key",
        &m.key("registrar"),
        "--subject-id",
        &subject,
        "--subject-key",
        &m.public("applicant")?,
        "--rpc",
        &m.rpc,
    ])?;
    m.tx("rater", &["set-rating", "--participant", &m.public("provider")?, "--rating", "4"], None)?;
    let spec = json!({ "spec": { "name": "Honest resume check", "category": "data_service", "domain": "employment", "grade": 3, "price": 500, "terms_hash": "11".repeat(32) } }).to_string();
    m.product = m.tx("provider", &["list-product", "--json", &spec], Some("product"))?;
    let demand = json!({ "title": "Verify 40 CVs a week", "domain": "employment", "budget": 9000, "description_hash": "22".repeat(32) }).to_string();
    m.tx("employer", &["post-demand", "--json", &demand], None)?;
    let grant = dpx(&[
        "grant",
        "sign",
        "--key",
        &m.key("applicant"),
        "--subject",
        &subject,
        "--consumer",
        &m.public("employer")?,
        "--product",
        &m.product,
        "--purpose",
        "hiring-check",
        "--valid-for",
        "24h",
        "--rpc",
        &m.rpc,
    ])?
    .trim()
    .to_owned();
    dpx(&["grant", "use", &grant, "--key", &m.key("employer"), "--rpc", &m.rpc])?;
    let inspected: Value =
        serde_json::from_str(&dpx(&["grant", "inspect", &grant, "--output", "json"])?)?;
    inspected["id"].as_str().context("grant id")?.clone_into(&mut m.grant);
    m.provider = m.public("provider")?;
    Ok(m)
}

fn screenshots_dir() -> anyhow::Result<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(t).join("console-screenshots"));
    }
    let bin = dpx_tests::dpx_bin()?;
    let target = bin.parent().and_then(Path::parent).context("target dir")?;
    Ok(target.join("console-screenshots"))
}

/// Open `path`, check it is the page expected (`marker` is in `#live`, or `main`), save a PNG.
fn visit(b: &Browser, base: &str, path: &str, marker: &str, shot: &str) -> anyhow::Result<String> {
    b.goto(&format!("{base}{path}"))?;
    let text = b.wait_text("main", marker, Duration::from_secs(10))?;
    b.screenshot(&screenshots_dir()?.join(format!("{shot}.png")))?;
    Ok(text)
}

fn sign_in(b: &Browser, m: &Market, who: &str) -> anyhow::Result<()> {
    let out: Value = serde_json::from_str(&dpx(&[
        "console",
        "login",
        "--key",
        &m.key(who),
        "--rpc",
        &m.rpc,
        "--output",
        "json",
    ])?)?;
    let url = out["url"].as_str().context("url")?;
    b.goto(url)?;
    anyhow::ensure!(b.current_url()?.ends_with("/console"), "not redirected: {}", b.current_url()?);
    b.wait_text("#who", "signed in as", Duration::from_secs(5)).map(drop)
}

/// GET without following redirects: (status, headers, body).
fn raw_get(
    url: &str,
    cookie: Option<&str>,
) -> anyhow::Result<(u16, reqwest::header::HeaderMap, String)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let mut req = http.get(url).timeout(Duration::from_secs(20));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await?;
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        Ok((status, headers, r.text().await?))
    })
}

/// What the browser does not show: the cookie's attributes, the security headers, refusals.
fn http_checks(m: &Market) -> anyhow::Result<()> {
    let out: Value = serde_json::from_str(&dpx(&[
        "console",
        "login",
        "--key",
        &m.key("regulator"),
        "--rpc",
        &m.rpc,
        "--output",
        "json",
    ])?)?;
    let (status, headers, _) = raw_get(out["url"].as_str().context("url")?, None)?;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/console");
    let cookie = headers["set-cookie"].to_str()?;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let pair = cookie.split(';').next().context("cookie pair")?;
    let (status, headers, body) = raw_get(&format!("{}/console/market", m.rpc), Some(pair))?;
    assert_eq!(status, 200);
    assert!(body.contains("regulator (supervisor)"));
    let csp = headers["content-security-policy"].to_str()?;
    assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
    let (status, _, body) = raw_get(&format!("{}/console/login?token=v1.nope", m.rpc), None)?;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("malformed"), "{body}");
    let (status, _, _) = raw_get(&format!("{}/console/grants/{}", m.rpc, "00".repeat(32)), None)?;
    assert_eq!(status, 403, "an absent grant is hidden, not missing, to the public");
    // The proof bundles behind the page follow the RPC's rule for transactions.
    let (status, _, body) =
        raw_get(&format!("{}/console/proofs/tx/{}", m.rpc, "00".repeat(32)), None)?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"forbidden\""), "{body}");
    let (status, _, body) = raw_get(&format!("{}/console/proofs/tx/zz", m.rpc), None)?;
    assert_eq!(status, 400, "{body}");
    Ok(())
}

#[test]
fn the_console_shows_each_viewer_what_the_read_policy_allows_and_updates_live() -> anyhow::Result<()>
{
    let started = Instant::now();
    // The browser first: a machine without it fails here, before building a cluster.
    let b = Browser::start(1280, 1000)?;
    let m = build_market()?;
    let base = m.rpc.clone();
    eprintln!("cluster and market ready in {:?}", started.elapsed());

    // Anonymous: every page renders, with the public view only.
    let chain = visit(&b, &base, "/console", "Validators", "01-chain-public")?;
    assert!(chain.contains("Block interval") && chain.contains("Transactions per block"));
    assert_eq!(
        b.execute("return document.querySelectorAll('#validators tbody tr').length")?,
        json!(4)
    );
    assert!(b.exists("#chart-txs rect.bar")?, "the SVG chart has bars");
    let market = visit(&b, &base, "/console/market", "Participants", "02-market-public")?;
    assert!(market.contains("Honest resume check") && market.contains("provider"));
    // The hostile name is shown as text and nothing in it ran.
    assert!(market.contains(HOSTILE), "the hostile name is not shown as text:\n{market}");
    assert_eq!(b.execute("return window.__pwned === undefined")?, json!(true));
    assert_eq!(
        b.execute("return document.querySelectorAll('main script, main img').length")?,
        json!(0)
    );
    // Demands are for active participants: the public sees none, nor how many there are.
    assert!(market.contains("visible to active participants only"), "{market}");
    assert!(!market.contains("Verify 40 CVs"), "{market}");
    let grants = visit(&b, &base, "/console/grants", "issued", "03-grants-public")?;
    assert_eq!(b.text("#grants-consumed")?, "0", "anonymous sees no grant:\n{grants}");
    visit(
        &b,
        &base,
        &format!("/console/participants/{}", m.provider),
        "Products it provides",
        "04-participant",
    )?;
    visit(
        &b,
        &base,
        &format!("/console/products/{}", m.product),
        "Honest resume check",
        "05-product",
    )?;
    let hidden = visit(
        &b,
        &base,
        &format!("/console/grants/{}", m.grant),
        "not visible",
        "06-grant-hidden-public",
    )?;
    assert!(!hidden.contains("hiring-check"), "{hidden}");

    eprintln!("anonymous pages: {:?}", started.elapsed());
    // The regulator signs in with the one-time URL and sees the grant's life.
    sign_in(&b, &m, "regulator")?;
    assert!(b.text("#who")?.contains("regulator (supervisor)"), "{}", b.text("#who")?);
    let market = visit(&b, &base, "/console/market", "Orders by state", "07-market-regulator")?;
    assert!(market.contains("Verify 40 CVs a week"), "{market}");
    let grants = visit(&b, &base, "/console/grants", "consumed", "08-grants-regulator")?;
    assert_eq!(b.text("#grants-consumed")?, "1", "{grants}");
    // Counts over time, from the aggregate index (which trails the tip by a moment).
    let consumed = "return Array.from(document.querySelectorAll('#grant-trend tbody tr'))\
        .map(function (r) { return +r.cells[2].textContent; }).reduce(function (a, b) { return a + b; }, 0)";
    let deadline = Instant::now() + Duration::from_secs(15);
    while b.execute(consumed)? != json!(1) {
        anyhow::ensure!(Instant::now() < deadline, "grant-trend: {}", b.text("#grant-trend")?);
        std::thread::sleep(Duration::from_millis(500));
        b.goto(&format!("{base}/console/grants"))?;
    }
    assert!(b.exists("#grant-trend-chart rect.bar")?, "the trend chart has bars");
    let life = visit(
        &b,
        &base,
        &format!("/console/grants/{}", m.grant),
        "used once at height",
        "09-grant-regulator",
    )?;
    assert_eq!(b.text("#grant-state")?, "consumed");
    assert!(life.contains("hiring-check") && life.contains("employer"), "{life}");
    // Each step's proof is checked by the page's script in this browser: registered and used
    // by one transaction, its receipt certified by the next block.
    let verified = "return document.querySelectorAll('[data-verified=\"yes\"]').length";
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.execute(verified)? != json!(2) {
        anyhow::ensure!(Instant::now() < deadline, "proofs not verified: {}", b.text("#steps")?);
        std::thread::sleep(Duration::from_millis(200));
    }
    let steps = b.text("#steps")?;
    assert!(
        steps.contains("verified in this browser against the trust root below: in block")
            && steps.contains("receipt certified"),
        "{steps}"
    );
    assert_eq!(b.text("#trust-root")?.len(), 64, "{steps}");
    b.screenshot(&screenshots_dir()?.join("09b-grant-proofs-verified.png"))?;
    // The same check refuses a bundle with one byte of the transaction changed.
    b.execute(
        "window.__tamper = null; var h = document.querySelector('[data-tx]').getAttribute('data-tx'); \
         Promise.all([fetch('/console/proofs/tx/' + h).then(function (r) { return r.json(); }), \
                      fetch('/console/proofs/genesis').then(function (r) { return r.json(); })]) \
         .then(function (x) { var t = x[0]; t.tx = (t.tx.slice(0, 2) === '00' ? '01' : '00') + t.tx.slice(2); \
                return dpxVerify.verifyTxBundle(t, x[1].validators, x[1].chain_id); }) \
         .then(function () { window.__tamper = 'accepted'; }, function (e) { window.__tamper = 'refused: ' + e.message; }); \
         return true",
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let tamper = loop {
        let v = b.execute("return window.__tamper")?;
        if let Some(t) = v.as_str() {
            break t.to_owned();
        }
        anyhow::ensure!(Instant::now() < deadline, "the tamper check did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(tamper.starts_with("refused: "), "{tamper}");

    eprintln!("regulator pages: {:?}", started.elapsed());
    // Live: a transaction committed elsewhere appears on the open page without a reload.
    b.goto(&format!("{base}/console/market"))?;
    b.wait_text("#live-status", "live: block", Duration::from_secs(30))?;
    b.execute("window.__notReloaded = 42; return true")?;
    m.admit("late", "late-arrival", "consumer")?;
    b.wait_text("#participant-list", "late-arrival", Duration::from_secs(30))?;
    assert_eq!(b.execute("return window.__notReloaded")?, json!(42), "the page was reloaded");
    b.screenshot(&screenshots_dir()?.join("10-market-live.png"))?;

    eprintln!("live update: {:?}", started.elapsed());
    // Decisions: a denial appears live on the open search page, with the policy that decided
    // and its reason; the policy set in force and its history are there.
    let decisions = visit(
        &b,
        &base,
        "/console/decisions?outcome=denied",
        "Policy set in force",
        "15-decisions-regulator",
    )?;
    assert!(decisions.contains("no older decisions match"), "{decisions}");
    assert_eq!(b.text("#policy-version")?, "1");
    b.wait_text("#live-status", "live: block", Duration::from_secs(30))?;
    let order = json!({ "product": m.product, "purpose": "hiring-check" }).to_string();
    let receipt = m.tx_denied("outsider", &["place-order", "--json", &order])?;
    let reason = receipt["decision"]["reason"].as_str().context("reason")?.to_owned();
    b.wait_text("#decisions", "restricted-needs-consumed-grant", Duration::from_secs(30))?;
    let row = b.text("#decisions tbody tr")?;
    assert!(row.contains("denied") && row.contains("outsider") && row.contains("order"), "{row}");
    if !reason.is_empty() {
        assert!(b.text("#decisions")?.contains(&reason), "{reason:?} not shown");
    }
    b.screenshot(&screenshots_dir()?.join("16-decisions-live.png"))?;
    // The search form narrows by principal; a bad value is refused on the page, not a crash.
    b.goto(&format!("{base}/console/decisions?principal={}", m.public("outsider")?))?;
    b.wait_text("#decisions", "outsider", Duration::from_secs(10))?;
    let (status, _, body) = raw_get(&format!("{base}/console/decisions?principal=zz"), None)?;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("principal must be 64 hex"), "{body}");

    eprintln!("decisions: {:?}", started.elapsed());
    // Signing out returns to the public view; a participant unrelated to the grant sees
    // neither it nor its counts.
    b.click("#logout")?;
    b.wait_text("#who", "public view", Duration::from_secs(5))?;
    sign_in(&b, &m, "outsider")?;
    let other = visit(
        &b,
        &base,
        &format!("/console/grants/{}", m.grant),
        "not visible",
        "11-grant-hidden-outsider",
    )?;
    assert!(!other.contains("hiring-check"), "{other}");
    let refused = b.execute(
        "return fetch('/console/proofs/genesis').then(function (r) { return r.status; })",
    )?;
    assert_eq!(refused, json!(200), "the trust root is public");
    let grants = visit(&b, &base, "/console/grants", "issued", "12-grants-outsider")?;
    assert_eq!(b.text("#grants-consumed")?, "0");
    assert!(grants.contains("Counts over time are for supervisors"), "{grants}");
    assert!(!b.exists("#grant-trend-chart")?);
    // The consumer does see its own grant.
    sign_in(&b, &m, "employer")?;
    visit(
        &b,
        &base,
        &format!("/console/grants/{}", m.grant),
        "used once at height",
        "13-grant-consumer",
    )?;

    eprintln!("outsider and consumer: {:?}", started.elapsed());
    // A used login URL does not sign in twice.
    let out: Value = serde_json::from_str(&dpx(&[
        "console",
        "login",
        "--key",
        &m.key("regulator"),
        "--rpc",
        &m.rpc,
        "--output",
        "json",
    ])?)?;
    let url = out["url"].as_str().context("url")?;
    b.goto(url)?;
    b.goto(url)?;
    b.wait_text("main", "already used", Duration::from_secs(5))?;
    eprintln!("replayed login: {:?}", started.elapsed());
    http_checks(&m)?;
    eprintln!("http checks: {:?}", started.elapsed());

    // The browser is signed in as the regulator again (the first use of that URL). Its key is
    // rotated out: the next page reads as the public, without signing out.
    b.goto(&format!("{base}/console/grants/{}", m.grant))?;
    b.wait_text("main", "used once at height", Duration::from_secs(5))?;
    let old = dpx_crypto::keyfile::load(Path::new(&m.key("regulator")))?;
    let new = dpx_crypto::Keypair::generate();
    let chain = m.c.get(0, "/v1/status")?["chain_id"].as_str().context("chain_id")?.to_owned();
    let proof = new.sign(
        dpx_contracts::ROTATE_KEY_DOMAIN,
        &chain,
        &dpx_contracts::rotation_message(&old.public()),
    );
    let op = json!({ "new_key": new.public(), "new_key_signature": proof }).to_string();
    m.tx("regulator", &["rotate-key", "--json", &op], None)?;
    visit(
        &b,
        &base,
        &format!("/console/grants/{}", m.grant),
        "not visible",
        "14-grant-rotated-out",
    )?;
    assert!(b.text("#who")?.contains("no standing now"), "{}", b.text("#who")?);
    drop(m.c);
    eprintln!("browser test done in {:?}", started.elapsed());
    Ok(())
}

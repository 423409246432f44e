//! A headless Chromium driven over the W3C WebDriver protocol, for the console's browser tests.
//!
//! [`Browser::start`] runs Debian's `chromedriver` (package `chromium-driver`) on a free port
//! and opens one session of `chromium` (package `chromium`) in headless mode; both are killed
//! when the [`Browser`] is dropped. The client is the few WebDriver commands the tests use
//! (navigate, find, text, click, run a script, screenshot), JSON over HTTP with the `reqwest`
//! the harness already has. Missing binaries are an error that says which package installs
//! them (`scripts/prereqs.sh` does), never a skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

/// The WebDriver name of an element reference in answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian installs the two binaries (or `DPX_CHROMIUM` / `DPX_CHROMEDRIVER`).
fn binary(var: &str, candidates: &[&str], package: &str) -> anyhow::Result<PathBuf> {
    let overridden = std::env::var(var).ok();
    let candidates: Vec<&str> =
        overridden.as_deref().map_or_else(|| candidates.to_vec(), |p| vec![p]);
    candidates.iter().map(PathBuf::from).find(|p| p.exists()).with_context(|| {
        format!(
            "{} not found (looked in {candidates:?}; set {var} to override): the console's \
             browser tests need Debian's `{package}` package — `apt-get install -y chromium \
             chromium-driver` (scripts/prereqs.sh installs it as root)",
            candidates[0]
        )
    })
}

/// A running chromedriver with one browser session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a headless chromium session with a `width`×`height` window.
    pub fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let chromium = binary("DPX_CHROMIUM", &["/usr/bin/chromium"], "chromium")?;
        let chromedriver =
            binary("DPX_CHROMEDRIVER", &["/usr/bin/chromedriver"], "chromium-driver")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let http = reqwest::Client::builder().timeout(Duration::from_mins(1)).build()?;
        let profile = tempfile::tempdir()?;
        let mut b = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            rt,
            http,
            profile,
        };
        b.wait_ready()?;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", b.profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        } } });
        let v = b.call("POST", "/session", Some(&caps))?;
        v["sessionId"]
            .as_str()
            .context("no sessionId in the new session")?
            .clone_into(&mut b.session);
        Ok(b)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = self.call("GET", "/status", None)
                && v["ready"] == true
            {
                return Ok(());
            }
            if let Some(st) = self.driver.try_wait()? {
                bail!("chromedriver exited at start: {st}");
            }
            if Instant::now() > deadline {
                bail!("chromedriver was not ready within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command; the answer's `value`, or its error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let t0 = Instant::now();
        let out = self.rt.block_on(async {
            let req = match method {
                "GET" => self.http.get(&url),
                "DELETE" => self.http.delete(&url),
                _ => self.http.post(&url).json(body.unwrap_or(&json!({}))),
            };
            let r = req.send().await.with_context(|| format!("{method} {path}"))?;
            let status = r.status();
            let v: Value = r.json().await.with_context(|| format!("{method} {path}: not JSON"))?;
            if !status.is_success() {
                bail!(
                    "{method} {path}: {status} {}: {}",
                    v["value"]["error"].as_str().unwrap_or("?"),
                    v["value"]["message"].as_str().unwrap_or("")
                );
            }
            Ok(v["value"].clone())
        });
        // A slow command is worth a line in the test's output: it is how a page that stalls
        // the browser (e.g. by holding connections) shows up before any assertion fails.
        if t0.elapsed() > Duration::from_secs(5) {
            eprintln!("SLOW {method} {path} {:?} {:?}", t0.elapsed(), out.as_ref().err());
        }
        out
    }

    fn in_session(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Navigate and wait for the page to load.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.in_session("POST", "/url", Some(&json!({ "url": url }))).map(drop)
    }

    pub fn current_url(&self) -> anyhow::Result<String> {
        Ok(self.in_session("GET", "/url", None)?.as_str().unwrap_or_default().to_owned())
    }

    /// The element matching a CSS selector, if any.
    fn find(&self, css: &str) -> anyhow::Result<Option<String>> {
        let body = json!({ "using": "css selector", "value": css });
        match self.in_session("POST", "/element", Some(&body)) {
            Ok(v) => Ok(Some(v[ELEMENT_KEY].as_str().context("element id")?.to_owned())),
            Err(e) if e.to_string().contains("no such element") => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn exists(&self, css: &str) -> anyhow::Result<bool> {
        Ok(self.find(css)?.is_some())
    }

    /// Find the element matching `css` and run `f` on its id. The console swaps its data
    /// section when a block commits, so an element found a moment ago may be gone: a stale
    /// element is looked up again (a few times), never reported as the page's fault.
    fn on_element<T>(&self, css: &str, f: impl Fn(&str) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut attempt = 0;
        loop {
            let id = self.find(css)?.with_context(|| format!("no element matches {css:?}"))?;
            match f(&id) {
                Err(e) if attempt < 5 && e.to_string().contains("stale element") => attempt += 1,
                other => return other,
            }
        }
    }

    /// The rendered text of the element matching `css`.
    pub fn text(&self, css: &str) -> anyhow::Result<String> {
        self.on_element(css, |id| {
            let v = self.in_session("GET", &format!("/element/{id}/text"), None)?;
            Ok(v.as_str().unwrap_or_default().to_owned())
        })
    }

    pub fn click(&self, css: &str) -> anyhow::Result<()> {
        self.on_element(css, |id| {
            self.in_session("POST", &format!("/element/{id}/click"), Some(&json!({}))).map(drop)
        })
    }

    /// Run `script` (a function body) in the page; its return value.
    pub fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.in_session("POST", "/execute/sync", Some(&json!({ "script": script, "args": [] })))
    }

    /// Wait until the text of `css` contains `needle`; the text.
    pub fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text(css).unwrap_or_default();
            if t.contains(needle) {
                return Ok(t);
            }
            if Instant::now() > deadline {
                bail!("{css:?} did not show {needle:?} within {timeout:?}; it shows:\n{t}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Save a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let v = self.in_session("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().context("screenshot is not a string")?)
            .context("screenshot is not base64")?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.in_session("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

//! The README's main command, end to end: `scripts/devnet.sh`, given the binary the test suite
//! already built (`DPX_BIN`, so it builds nothing), starts four validators and runs the demo
//! through the real CLI and RPC: admissions, a registrar admitted by governance, a data subject
//! enrolled, ratings, a grade-3 listing, a grant used once and refused the second time, a grant
//! signed by a non-subject key refused, a policy denial, a paid trade (a settlement bank and a
//! fee adopted by governance, a deposit, escrow, release minus the fee), a compute job over the
//! report, and an offline-verified proof; then an auditor replays the whole chain.

use std::process::Command;

#[test]
fn devnet_demo_runs_end_to_end() -> anyhow::Result<()> {
    let bin = dpx_tests::dpx_bin()?;
    let profile_dir = bin.parent().ok_or_else(|| anyhow::anyhow!("bin dir"))?;
    let target = profile_dir.parent().ok_or_else(|| anyhow::anyhow!("target dir"))?;
    let profile = if profile_dir.ends_with("release") { "release" } else { "debug" };
    let dir = tempfile::tempdir()?;
    let net = dir.path().join("devnet");
    let port = free_base_port()?;
    // The runtime value (set by `cargo test`) follows the checkout even when a shared target
    // directory holds a test binary built from another clone.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), Into::into);
    let root = manifest.join("..");
    let run = |arg: &str| {
        Command::new("bash")
            .arg(root.join("scripts/devnet.sh"))
            .arg(arg)
            .env("DPX_PROFILE", profile)
            .env("DPX_BIN", &bin)
            .env("CARGO_TARGET_DIR", target)
            .env("DPX_DEVNET_DIR", &net)
            .env("DPX_BASE_PORT", port.to_string())
            .output()
    };
    let out = run("up")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stopped = run("stop")?;
    assert!(out.status.success(), "devnet.sh failed:\n{stdout}\n{stderr}");
    assert!(stopped.status.success());
    for expected in [
        "the chain is live",
        "admitted employer as consumer",
        "provider rated 4",
        ": ok",
        "agency 2 approved",
        "enrolled (the ledger never sees the ID number)",
        "grant already consumed",
        "refused, as it must be",
        "the CLI will not sign it online: is not the subject's current key",
        "not its subject's current key",
        "denied: denied by policy",
        "the agencies admitted a settlement bank",
        "the same bank reference again is refused",
        "19500 fen to the provider, 500 fen fee to the treasury",
        "balances: employer 80000 fen, provider 19500 fen",
        "the agencies admitted a compute node",
        "(and only the result): job received",
        "VALID: grants",
        "/console   (the public view",
        "console login --key",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}\n{stderr}");
    }

    // An auditor replays the demo's chain from a stopped node's home: every root, the money
    // reconciled, the computation counted (the node may take a moment to let go of its store).
    let mut report = String::new();
    for _ in 0..40 {
        let out = Command::new(&bin)
            .args(["audit", "replay", "--quiet", "--genesis"])
            .arg(net.join("genesis.json"))
            .arg("--from-home")
            .arg(net.join("node0"))
            .output()?;
        report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() || !report.contains("is its node stopped") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for expected in [
        "VERIFIED: chain dpx-devnet",
        "money (minor units): deposited 100000, withdrawn 0; escrowed 20000, to providers 19500, fees 500",
        "= deposited - withdrawn: checked",
        "compute jobs: requested 0, attested 0, received 1, cancelled 0, rejected 0; inputs 1 (0 by grant, 1 by order)",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in the audit report:\n{report}");
    }
    Ok(())
}

fn free_base_port() -> anyhow::Result<u16> {
    for base in (34_000..60_000).step_by(97) {
        if (0..4).all(|i| {
            std::net::TcpListener::bind(("127.0.0.1", base + 10 * i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", base + 10 * i + 7)).is_ok()
        }) {
            return Ok(base);
        }
    }
    anyhow::bail!("no free ports")
}

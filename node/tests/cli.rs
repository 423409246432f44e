//! The `dpx` binary's offline commands: key generation, network creation and refusal of bad
//! input. (Running networks are exercised by the cluster tests in `tests/`.)

use std::process::Command;

fn dpx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dpx")).args(args).output().expect("run dpx")
}

#[test]
fn keygen_writes_a_0600_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.json");
    let out = dpx(&["keygen", "--out", p.to_str().unwrap(), "--output", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["public_key"].as_str().unwrap().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = dpx(&["keygen", "--out", p.to_str().unwrap()]);
    assert!(!again.status.success());
}

#[test]
fn testnet_init_writes_loadable_homes() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("net");
    let out = dpx(&[
        "testnet",
        "init",
        "--validators",
        "4",
        "--full-nodes",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    assert_eq!(nodes.iter().filter(|n| n["validator"] == true).count(), 4);
    for n in nodes {
        let home = std::path::Path::new(n["home"].as_str().unwrap());
        dpx_node::config::Config::load(&home.join("config.toml")).unwrap();
        dpx_genesis::Genesis::load(&home.join("genesis.json")).unwrap();
        dpx_crypto::keyfile::load(&home.join("node_key.json")).unwrap();
    }
    // A second init into the same directory is refused.
    let again = dpx(&["testnet", "init", "--out", out_dir.to_str().unwrap()]);
    assert!(!again.status.success());
}

#[test]
fn node_refuses_a_broken_home_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dpx(&["node", "start", "--home", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.toml"));
}

#[test]
fn grant_strings_round_trip_and_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("subject.json");
    assert!(dpx(&["keygen", "--out", key.to_str().unwrap()]).status.success());
    let consumer = dpx_crypto::Keypair::from_seed([7; 32]).public().to_hex();
    let product = "11".repeat(32);
    let out = dpx(&[
        "grant",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--consumer",
        &consumer,
        "--product",
        &product,
        "--purpose",
        "hiring-check",
        "--subject",
        &"22".repeat(32),
        "--expires-at-ms",
        "1796083200000",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let grant = String::from_utf8(out.stdout).unwrap();
    let out = dpx(&["grant", "inspect", grant.trim(), "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fields"]["consumer"], consumer);
    assert_eq!(v["fields"]["purpose"], "hiring-check");
    assert_eq!(v["subject"], "22".repeat(32));
    assert_eq!(v["expires_at"], "2026-12-01T00:00:00.000Z");
    assert!(!dpx(&["grant", "inspect", "not-a-grant"]).status.success());
    // --valid-for in people's units; nonsense is refused before anything is signed.
    let sign = |valid_for: &str| {
        dpx(&[
            "grant",
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--consumer",
            &consumer,
            "--product",
            &product,
            "--purpose",
            "hiring-check",
            "--subject",
            &"22".repeat(32),
            "--valid-for",
            valid_for,
            "--output",
            "json",
        ])
    };
    let out = sign("24h");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["expires_at_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(!sign("24 hours").status.success());
}

#[test]
fn keyed_hash_of_an_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("registrar.secret");
    std::fs::write(&secret, format!("{}\n", "42".repeat(32))).unwrap();
    let out =
        dpx(&["hash", "--keyed", "--key-file", secret.to_str().unwrap(), "110101199003071234"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = dpx_contracts::SubjectId::keyed(&[0x42; 32], b"110101199003071234");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), expected.to_string());
    // A short secret, or --keyed without one, is refused.
    std::fs::write(&secret, "abcd").unwrap();
    let out = dpx(&["hash", "--keyed", "--key-file", secret.to_str().unwrap(), "x"]);
    assert!(!out.status.success());
    assert!(!dpx(&["hash", "--keyed", "x"]).status.success());
}

#[test]
fn the_command_line_is_consistent() {
    use clap::CommandFactory as _;
    dpx_node::cli::Cli::command().debug_assert();
}

/// Nodes on their own hosts: every node listens on the listen host at the fixed ports and its
/// peers dial the host named for it; nothing needs rewriting afterwards.
#[test]
fn testnet_init_with_hosts_writes_final_configs() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("net");
    let hosts = "10.9.0.10,10.9.0.11,10.9.0.12,node3.example";
    let out = dpx(&[
        "testnet",
        "init",
        "--validators",
        "4",
        "--out",
        out_dir.to_str().unwrap(),
        "--hosts",
        hosts,
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg = |i: usize| {
        dpx_node::config::Config::load(&out_dir.join(format!("node{i}/config.toml"))).unwrap()
    };
    let c0 = cfg(0);
    assert_eq!(c0.p2p.listen, "/ip4/0.0.0.0/tcp/26656");
    assert_eq!(c0.rpc.listen, "0.0.0.0:26657");
    assert_eq!(c0.p2p.advertise.as_deref(), Some("/ip4/10.9.0.10/tcp/26656"));
    let addrs: Vec<&str> = c0.p2p.peers.iter().map(|p| p.addr.as_str()).collect();
    assert_eq!(
        addrs,
        ["/ip4/10.9.0.11/tcp/26656", "/ip4/10.9.0.12/tcp/26656", "/dns/node3.example/tcp/26656"]
    );
    // Every home holds the safety state of its new key.
    for i in 0..4 {
        assert!(out_dir.join(format!("node{i}/data/safety.bin")).exists());
    }
    assert_eq!(cfg(3).p2p.advertise.as_deref(), Some("/dns/node3.example/tcp/26656"));
    // One address per node, each a host.
    let bad = |hosts: &str, want: &str| {
        let d = tempfile::tempdir().unwrap();
        let out = dpx(&["testnet", "init", "--out", d.path().to_str().unwrap(), "--hosts", hosts]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{hosts}: {err}");
    };
    bad("10.0.0.1,10.0.0.2", "one per node");
    bad("10.0.0.1,10.0.0.2,10.0.0.3,bad host", "neither an IP address nor a host name");
    let d = tempfile::tempdir().unwrap();
    let out = dpx(&[
        "testnet",
        "init",
        "--out",
        d.path().to_str().unwrap(),
        "--hosts",
        "a,b,c,d",
        "--base-port",
        "30000",
    ]);
    assert!(!out.status.success(), "--hosts with --base-port must be refused");
}

/// `dpx init` prepares a home from a genesis file; a node whose key lost its safety file
/// refuses to start as a validator, even on an empty ledger, until the operator says so.
#[test]
fn init_from_a_genesis_and_the_safety_file_guard() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let out = dpx(&["testnet", "init", "--validators", "1", "--out", net.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let genesis = net.join("genesis.json");
    let home = dir.path().join("agency-e");
    let peer = format!(
        "{}@/ip4/127.0.0.1/tcp/1",
        dpx_crypto::keyfile::load(&net.join("node0/node_key.json")).unwrap().public()
    );
    let out = dpx(&[
        "init",
        "--genesis",
        genesis.to_str().unwrap(),
        "--home",
        home.to_str().unwrap(),
        "--p2p-listen",
        "/ip4/127.0.0.1/tcp/0",
        "--rpc-listen",
        "127.0.0.1:0",
        "--peer",
        &peer,
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = dpx_crypto::keyfile::load(&home.join("node_key.json")).unwrap();
    assert_eq!(v["node_key"], key.public().to_hex());
    assert_eq!(v["peer"], format!("{}@/ip4/127.0.0.1/tcp/0", key.public()));
    // A second init of the same home is refused, and the key stays.
    let again =
        dpx(&["init", "--genesis", genesis.to_str().unwrap(), "--home", home.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));
    assert_eq!(
        dpx_crypto::keyfile::load(&home.join("node_key.json")).unwrap().public(),
        key.public()
    );
    // The key without its safety file: refused before anything listens.
    std::fs::remove_file(home.join("data/safety.bin")).unwrap();
    let out = dpx(&["node", "start", "--home", home.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("data/safety.bin is missing"), "{err}");
    // A bad genesis file is named.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let out = dpx(&[
        "init",
        "--genesis",
        junk.to_str().unwrap(),
        "--home",
        dir.path().join("h2").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a valid genesis"));
    assert!(!dir.path().join("h2").exists());
}

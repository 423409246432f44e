//! The RPC under abuse: malformed, oversized and rate-exceeding requests get the right status
//! codes and JSON errors, and the chain is unaffected.

use std::time::Duration;

use dpx_tests::{Cluster, post_json};
use serde_json::json;

#[test]
fn malformed_oversized_and_flooding_requests_are_refused() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    // A tight per-IP limit, so a modest flood crosses it whatever the machine's speed.
    let cfg_path = net.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    cfg.rpc.per_ip_requests_per_s = 20;
    cfg.rpc.per_ip_burst = 200;
    cfg.save(&cfg_path)?;
    net.start_all()?;
    net.wait_height(0, 1, Duration::from_mins(1))?;
    let rpc = net.rpc[0].clone();
    let txs = format!("{rpc}/v1/txs");

    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({"tx": "zz"}), 400, "bad_encoding"),
        (json!({"tx": "00ff00ff"}), 400, "invalid_tx"),
        (json!({"nope": 1}), 400, "bad_json"),
    ];
    for (body, status, code) in cases {
        let (got, v) = post_json(&txs, &body)?;
        assert_eq!(got, status, "{body} -> {v}");
        assert_eq!(v["error"]["code"], code, "{body} -> {v}");
    }
    let (got, v) = post_json(&format!("{txs}?wait=never"), &json!({"tx": "00"}))?;
    assert_eq!((got, v["error"]["code"].as_str()), (400, Some("bad_wait")));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let client = reqwest::Client::new();
    rt.block_on(async {
        // Over the 2 MiB body limit.
        let big = vec![b'a'; 3 << 20];
        let r = client
            .post(&txs)
            .header("content-type", "application/x-protobuf")
            .body(big)
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 413);
        // Unknown routes, bad path parameters, unknown objects.
        for (path, status) in [
            ("/v1/nope", 404),
            ("/v1/blocks/abc", 400),
            ("/v1/blocks/999999", 404),
            ("/v1/txs/xyz", 400),
            (&format!("/v1/txs/{}", "00".repeat(32)), 404),
            ("/v1/state/unicorns", 404),
            ("/v1/state/grants/not-hex", 400),
        ] {
            let r = client.get(format!("{rpc}{path}")).send().await?;
            assert_eq!(r.status().as_u16(), status, "{path}");
            let v: serde_json::Value = r.json().await?;
            assert!(v["error"]["code"].is_string(), "{path}: {v}");
        }
        // A flood from one address runs into the per-IP limit (429), and the node stays up.
        let mut handles = Vec::new();
        for _ in 0..400 {
            let (cl, url) = (client.clone(), format!("{rpc}/health"));
            handles.push(tokio::spawn(async move {
                cl.get(url).send().await.map(|r| r.status().as_u16())
            }));
        }
        let mut limited = 0;
        for h in handles {
            if let Ok(Ok(429)) = h.await {
                limited += 1;
            }
        }
        println!("{limited} of 400 flood requests were rate limited");
        assert!(limited > 0, "no request was rate limited");
        anyhow::Ok(())
    })?;

    // The chain goes on and no garbage reached it.
    std::thread::sleep(Duration::from_secs(3)); // let the bucket refill
    let h = net.height(0)?;
    net.wait_height(0, h + 2, Duration::from_mins(1))?;
    for height in 1..=h {
        let b = net.get(0, &format!("/v1/blocks/{height}"))?;
        assert_eq!(b["txs"].as_array().map(Vec::len), Some(0), "garbage committed at {height}");
    }
    Ok(())
}

//! Many clients at once against the real binary: 200 threads, each with its own connections,
//! start an orchestration through `serve`'s HTTP API and poll its status URI until it ends. All
//! complete, none is lost, and the listing holds exactly those 200. The client is ureq, which
//! shares nothing with the server's stack (hyper/axum).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;

use binary_support::served::serve;
use serde_json::Value;
use std::time::{Duration, Instant};

const CLIENTS: usize = 200;

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

fn json(response: &mut ureq::http::Response<ureq::Body>) -> Value {
    let text = response.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

#[test]
fn two_hundred_clients_start_and_poll_through_the_binary_and_none_is_lost() {
    let served = serve(&[]);
    let base = format!("http://{}/runtime/webhooks/durabletask", served.addr);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent = agent();
                let mut started = agent
                    .post(format!("{base}/orchestrators/HelloSequence/load-{client}"))
                    .send_empty()
                    .unwrap();
                assert_eq!(started.status(), 202);
                let started = json(&mut started);
                let status_uri = started["statusQueryGetUri"].as_str().unwrap().to_string();
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let mut answer = agent.get(&status_uri).call().unwrap();
                    let status = answer.status().as_u16();
                    let body = json(&mut answer);
                    if status == 200 {
                        assert_eq!(body["runtimeStatus"], "Completed", "{body}");
                        assert_eq!(body["output"][0], "Hello Tokyo!", "{body}");
                        return body["instanceId"].as_str().unwrap().to_string();
                    }
                    assert_eq!(status, 202, "{body}");
                    assert!(
                        Instant::now() < deadline,
                        "load-{client} never ended: {body}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    let mut ended: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    ended.sort();
    ended.dedup();
    assert_eq!(
        ended.len(),
        CLIENTS,
        "every client saw its own instance end"
    );

    // The listing agrees: exactly those instances, all completed (paged with the continuation
    // header until it has none).
    let agent = agent();
    let mut listed = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut request = agent.get(format!("{base}/instances?top=64"));
        if let Some(token) = &continuation {
            request = request.header("x-ms-continuation-token", token);
        }
        let mut answer = request.call().unwrap();
        assert_eq!(answer.status(), 200);
        continuation = answer
            .headers()
            .get("x-ms-continuation-token")
            .map(|value| value.to_str().unwrap().to_string());
        for status in json(&mut answer).as_array().unwrap() {
            assert_eq!(status["runtimeStatus"], "Completed", "{status}");
            listed.push(status["instanceId"].as_str().unwrap().to_string());
        }
        if continuation.is_none() {
            break;
        }
    }
    listed.sort();
    assert_eq!(listed, ended);
}

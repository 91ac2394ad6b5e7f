//! The API on a real socket (`serve` on a loopback listener): 200 clients at once, each on its
//! own connections, start an orchestration and poll its status URI to the end; all complete and
//! none is lost. The client is raw HTTP/1.1 over tokio's `TcpStream`, so it shares nothing with
//! the server's stack.
// Test helpers panic on setup failures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::Engine;
use durable_emu_http::{HttpConfig, router, serve};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn call(addr: &str, method: &str, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "JSON answers have a length: {head}"
    );
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap()
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_on_a_real_socket_start_and_poll_to_the_end_and_none_is_lost() {
    let engine = Engine::start(durable_emu_testing::engine::samples_config()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = router(engine.handle().asynchronous(), HttpConfig::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, async move {
        let _ = stopped.await;
    }));

    let mut clients = tokio::task::JoinSet::new();
    for client in 0..200 {
        let addr = addr.clone();
        clients.spawn(async move {
            let (status, started) = call(
                &addr,
                "POST",
                &format!("/durabletask/orchestrators/HelloSequence/socket-{client}"),
            )
            .await;
            assert_eq!(status, 202, "{started}");
            let uri = started["statusQueryGetUri"].as_str().unwrap();
            let path = &uri[uri.find("/durabletask/").unwrap()..];
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let (status, body) = call(&addr, "GET", path).await;
                if status == 200 {
                    assert_eq!(body["runtimeStatus"], "Completed", "{body}");
                    return body["instanceId"].as_str().unwrap().to_string();
                }
                assert_eq!(status, 202, "{body}");
                assert!(
                    Instant::now() < deadline,
                    "socket-{client} never ended: {body}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
    let mut ended = Vec::new();
    while let Some(id) = clients.join_next().await {
        ended.push(id.unwrap());
    }
    ended.sort();
    ended.dedup();
    assert_eq!(ended.len(), 200, "every client saw its own instance end");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

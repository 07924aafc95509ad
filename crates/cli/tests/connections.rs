//! The server bounds what a connection may hold: a client that never finishes its request
//! head is closed after the header-read timeout, an idle keep-alive connection after the idle
//! timeout, and connections beyond `max_connections` wait until one closes. Push channels
//! (SSE, WebSocket) are busy, not idle, and outlive the idle timeout.
//!
//! Every wait on the server is bounded by `SAFETY`, far above the 1 s timeouts set here: a
//! test asserts that something happened, not when.

use std::time::Duration;

use sluice_core::jobs::NewJob;
use sluice_core::{JobId, Settings};
use sluice_server::testing::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SAFETY: Duration = Duration::from_secs(10);

async fn server(configure: impl FnOnce(&mut Settings)) -> TestServer {
    TestServer::start_with(Vec::new(), configure).await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Sends `GET /health` on a keep-alive connection and reads its whole response.
async fn health(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(SAFETY, read_response(stream))
        .await
        .expect("no response")
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if data.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Waits (bounded) until the server closes `stream`; anything but EOF or a reset fails.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0; 1024];
    let read = tokio::time::timeout(SAFETY, stream.read(&mut buf))
        .await
        .expect("the server kept the connection open");
    match read {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("unexpected data: {}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// A keep-alive connection, served once and then left idle, closed by the server: once it
/// is, a connection that was busy since before it has outlived the idle timeout.
async fn wait_out_the_idle_timeout(server: &TestServer) {
    let mut probe = connect(server).await;
    assert!(health(&mut probe).await.starts_with("HTTP/1.1 200"));
    closed_by_server(&mut probe).await;
}

fn publish_job(server: &TestServer) -> JobId {
    server
        .ctx
        .jobs
        .create(NewJob::new("network", "ingest", "files"))
        .unwrap()
        .id()
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_after_the_header_read_timeout() {
    let server = server(|s| s.header_read_timeout_secs = 1).await;
    let mut stream = connect(&server).await;
    // The request line and one header, without the blank line that ends the head.
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    closed_by_server(&mut stream).await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let server = server(|s| s.header_read_timeout_secs = 1).await;
    let mut stream = connect(&server).await;
    closed_by_server(&mut stream).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = server(|s| {
        s.idle_timeout_secs = 1;
        // Far beyond the test: only the idle timeout can close the connection.
        s.header_read_timeout_secs = 3600;
    })
    .await;
    let mut stream = connect(&server).await;
    // Kept alive between requests…
    for _ in 0..2 {
        let response = health(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    // …until it has been idle for the idle timeout.
    closed_by_server(&mut stream).await;
}

#[tokio::test]
async fn a_connection_beyond_max_connections_waits_until_one_closes() {
    let server = server(|s| s.max_connections = 2).await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    assert!(health(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(health(&mut second).await.starts_with("HTTP/1.1 200"));

    // The kernel completes the third handshake (listen backlog); the server does not accept
    // it while two connections are open.
    let mut third = connect(&server).await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // A correct server never answers within this window, so it cannot fail spuriously; it
    // gives a server without the bound time to answer.
    let mut byte = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "the third connection was served: {early:?}");

    drop(first);
    let response = tokio::time::timeout(SAFETY, read_response(&mut third))
        .await
        .expect("the third connection was not served after the first closed");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(health(&mut second).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_sse_stream_outlives_the_idle_timeout() {
    let server = server(|s| s.idle_timeout_secs = 1).await;
    // The stream subscribes to the bus before its response head is sent.
    let mut events = reqwest::get(server.url("/api/v1/events")).await.unwrap();
    assert_eq!(events.status(), 200);
    let mut received = String::new();
    let mut until_seen = async |id: JobId| {
        let id = id.to_string();
        tokio::time::timeout(SAFETY, async {
            while !received.contains(&id) {
                let chunk = events.chunk().await.unwrap().expect("the stream ended");
                received.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("the event did not arrive");
    };
    until_seen(publish_job(&server)).await;

    wait_out_the_idle_timeout(&server).await;
    until_seen(publish_job(&server)).await;
}

#[tokio::test]
async fn a_websocket_outlives_the_idle_timeout() {
    use futures::StreamExt;

    let server = server(|s| s.idle_timeout_secs = 1).await;
    // The socket subscribes to the bus before the handshake's response is sent.
    let url = server.url("/api/v1/ws").replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    wait_out_the_idle_timeout(&server).await;
    let id = publish_job(&server).to_string();
    let message = tokio::time::timeout(SAFETY, ws.next())
        .await
        .expect("no message")
        .expect("the socket ended")
        .unwrap();
    assert!(message.to_text().unwrap().contains(&id), "{message}");
}

#[tokio::test]
async fn a_websocket_counts_against_max_connections_until_it_closes() {
    let server = server(|s| s.max_connections = 1).await;
    let url = server.url("/api/v1/ws").replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let mut other = connect(&server).await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // As above: a correct server never answers within this window.
    let mut byte = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), other.read(&mut byte)).await;
    assert!(early.is_err(), "served beside the WebSocket: {early:?}");

    ws.close(None).await.unwrap();
    let response = tokio::time::timeout(SAFETY, read_response(&mut other))
        .await
        .expect("not served after the WebSocket closed");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

//! A model provider that is down: it answers every request with one HTTP status and OpenAI's error body
//! for it (429 with `Retry-After`), and counts the requests, so a test can prove a call went on to the next
//! provider of its route. A dead port (nothing listening) is [`dead_port`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read; a provider request is far smaller.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A running failing provider; it stops when dropped.
pub struct FailingProvider {
    pub base_url: String,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FailingProvider {
    /// Starts answering `status` on a free loopback port.
    pub async fn start(status: u16) -> FailingProvider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    if answer(stream, status).await.is_ok() {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        FailingProvider {
            base_url,
            requests,
            task,
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FailingProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head and `Content-Length` body) and answers `status`.
async fn answer(mut stream: TcpStream, status: u16) -> std::io::Result<()> {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 8192];
    let head_end = loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.extend_from_slice(&buffer[..read]);
        if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if received.len() > MAX_HEAD_BYTES {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    let (kind, retry_after) = match status {
        429 => ("rate_limit_error", "retry-after: 1\r\n"),
        _ => ("server_error", ""),
    };
    let body = format!(
        r#"{{"error":{{"message":"the provider is failing ({status})","type":"{kind}","param":null,"code":null}}}}"#
    );
    let response = format!(
        "HTTP/1.1 {status} Failing\r\ncontent-type: application/json\r\n{retry_after}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A loopback address nothing listens on: a provider whose connection is refused.
pub async fn dead_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}/v1")
}

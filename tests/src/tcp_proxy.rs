//! A loopback TCP proxy whose target can be switched: the address a service connects to, moved from a
//! failed PostgreSQL primary to its promoted standby as a virtual IP or a DNS change would. Switching
//! cuts every connection made to the old target, as the failed server would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The proxy; stops when dropped.
pub struct TcpProxy {
    pub port: u16,
    target: Arc<AtomicU16>,
    /// Cancelled on a switch: the connections of the old target end.
    generation: Arc<std::sync::Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `127.0.0.1:<target>`.
    pub async fn start(target: u16) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let target = Arc::new(AtomicU16::new(target));
        let generation = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (accept_target, accept_generation, accept_stop) =
            (target.clone(), generation.clone(), stop.clone());
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    () = accept_stop.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let port = accept_target.load(Ordering::Acquire);
                let cut = accept_generation
                    .lock()
                    .map(|token| token.clone())
                    .unwrap_or_default();
                connections.spawn(forward(client, port, cut));
                while connections.try_join_next().is_some() {}
            }
            connections.abort_all();
        });
        TcpProxy {
            port,
            target,
            generation,
            stop,
        }
    }

    /// Sends new connections to `target` and cuts the ones already open.
    pub fn switch(&self, target: u16) {
        self.target.store(target, Ordering::Release);
        if let Ok(mut token) = self.generation.lock() {
            token.cancel();
            *token = CancellationToken::new();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn forward(mut client: TcpStream, port: u16, cut: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    tokio::select! {
        () = cut.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}

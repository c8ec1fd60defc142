//! A TCP proxy in front of a database that a test can break: cut every connection through it
//! (what a database restart, a failover or `pg_terminate_backend` does to a client) and refuse
//! new ones (a database that is down), then let them through again. It breaks only the
//! connections of the test that owns it: the database behind it is never touched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    /// Whether new connections are to be refused (the listener closed).
    refuse: watch::Sender<bool>,
    /// Whether the listener is open now.
    listening: watch::Receiver<bool>,
    cut: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let (cut, cut_rx) = watch::channel(0u64);
        let (refuse, refuse_rx) = watch::channel(false);
        let (listening_tx, listening) = watch::channel(true);
        let task = tokio::spawn(serve(
            listener,
            upstream,
            refuse_rx,
            listening_tx,
            cut_rx,
            accepted.clone(),
        ));
        Self {
            addr,
            refuse,
            listening,
            cut,
            accepted,
            task,
        }
    }

    /// Where clients connect: `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through the proxy now.
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Refuses new connections (the port is closed: connecting fails with "connection
    /// refused", as to a host whose database is down), or accepts them again on the same port.
    /// Returns once that is so.
    pub async fn refuse(&self, refuse: bool) {
        self.refuse.send_replace(refuse);
        let mut listening = self.listening.clone();
        listening.wait_for(|l| *l != refuse).await.unwrap();
    }

    /// Connections let through so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut_all();
        self.task.abort();
    }
}

async fn serve(
    first: TcpListener,
    upstream: SocketAddr,
    mut refuse: watch::Receiver<bool>,
    listening: watch::Sender<bool>,
    cut: watch::Receiver<u64>,
    accepted: Arc<AtomicU64>,
) {
    let addr = first.local_addr().unwrap();
    let mut listener = Some(first);
    loop {
        let Some(open) = listener.take() else {
            // Closed: wait to be let through again, then listen on the same port.
            refuse.wait_for(|r| !*r).await.unwrap();
            listener = Some(TcpListener::bind(addr).await.unwrap());
            listening.send_replace(true);
            continue;
        };
        tokio::select! {
            conn = open.accept() => {
                if let Ok((client, _)) = conn {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(forward(client, upstream, cut.clone()));
                }
                listener = Some(open);
            }
            _ = refuse.wait_for(|r| *r) => {
                drop(open);
                listening.send_replace(false);
            }
        }
    }
}
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<u64>) {
    cut.borrow_and_update();
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {}
    }
    // Both sockets close here: the client sees its server go away mid-session.
}

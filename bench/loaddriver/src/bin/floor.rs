//! The floor of one HTTP request on this machine: the smallest keep-alive HTTP/1.1 server that
//! answers every request with a fixed `200 {"status":"ok"}` — one current-thread tokio runtime,
//! one read and one write per request, no parsing beyond finding the end of the head, no
//! routing, no allocation per request. Its server CPU per request under the driver's `health`
//! phase is what any server pays here for loopback TCP, epoll and the wake-ups (see
//! `docs/benchmarks.md`, "The floor of a request").
//!
//! ```text
//! taskset -c 0 floor 127.0.0.1:3999 &
//! taskset -c 1 loaddriver --base-url http://127.0.0.1:3999 --phases health --server-pid $!
//! ```
//! Only GET requests without a body are understood; anything else closes the connection.

#![allow(clippy::print_stdout)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the floor server listens on 127.0.0.1 only",
        ));
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(addr).await?;
            println!("listening on {}", listener.local_addr()?);
            loop {
                let (conn, _) = listener.accept().await?;
                conn.set_nodelay(true)?;
                tokio::spawn(serve(conn));
            }
        })
}

/// Answers each complete request head in what was read; keeps a partial head for the next read.
async fn serve(mut conn: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    let mut out = Vec::with_capacity(RESPONSE.len() * 4);
    loop {
        let Some(free) = buf.get_mut(filled..).filter(|b| !b.is_empty()) else {
            return; // a head larger than the buffer
        };
        match conn.read(free).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let mut start = 0;
        while let Some(end) = head_end(&buf[start..filled]) {
            out.extend_from_slice(RESPONSE);
            start += end;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if !out.is_empty() {
            if conn.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The length of the first complete request head in `b` (through its blank line).
fn head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

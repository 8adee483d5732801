//! TCP_NODELAY on PostgreSQL connections, which sqlx 0.9.0 no longer sets
//! (transact-rs/sqlx#4335; fixed upstream by #4336, not yet released).
//! Without it, Nagle's algorithm holds the tail of any message longer than
//! one TCP segment until the server's delayed ACK, up to 40 ms: measured
//! here as 45 ms between Parse and Bind of a 90 KB insert on loopback, and
//! on a real network it hits any statement over about 1.4 KB (every stored
//! Stripe event). Drop this module once a release sets the option itself.
//!
//! sqlx does not hand out its socket, so each new connection asks the server
//! which client port it sees, and the socket of ours with that local port
//! and the server's port as its peer is given the option. Through a proxy
//! the ports do not match and nothing changes.

use sqlx::PgConnection;

pub(super) async fn set(conn: &mut PgConnection, server_port: u16) -> Result<(), sqlx::Error> {
    // NULL over a Unix socket, which has no Nagle.
    let port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut *conn)
        .await?;
    if let Some(port) = port.and_then(|p| u16::try_from(p).ok()) {
        set_on_socket(port, server_port);
    }
    Ok(())
}

fn set_on_socket(local_port: u16, peer_port: u16) {
    let set = with_socket(local_port, peer_port, |socket| socket.set_tcp_nodelay(true));
    if let Some(Err(e)) = set {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a database connection");
    }
}

/// Whether our TCP socket from `local_port` to `peer_port` has TCP_NODELAY;
/// `None` if there is no such socket (or not on Linux).
pub fn is_set(local_port: u16, peer_port: u16) -> Option<bool> {
    with_socket(local_port, peer_port, |socket| socket.tcp_nodelay().ok()).flatten()
}

#[cfg(target_os = "linux")]
fn with_socket<T>(
    local_port: u16,
    peer_port: u16,
    f: impl FnOnce(socket2::SockRef<'_>) -> T,
) -> Option<T> {
    use std::os::fd::{BorrowedFd, RawFd};

    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    for entry in fds.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is a socket of this process and is used
        // only for the calls below; should another thread close it
        // meanwhile, they fail (EBADF) and nothing else happens.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let port = |addr: std::io::Result<socket2::SockAddr>| {
            addr.ok().and_then(|a| a.as_socket()).map(|a| a.port())
        };
        if port(socket.local_addr()) == Some(local_port)
            && port(socket.peer_addr()) == Some(peer_port)
        {
            return Some(f(socket));
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn with_socket<T>(
    _local_port: u16,
    _peer_port: u16,
    _f: impl FnOnce(socket2::SockRef<'_>) -> T,
) -> Option<T> {
    None
}

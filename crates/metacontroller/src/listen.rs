//! Listening sockets for the metrics, health and profiling endpoints.
//!
//! Addresses follow Go's `net.Listen("tcp", …)`: `0` or empty disables the
//! endpoint; `:PORT` (no host) and `[::]:PORT` listen on every address of
//! both families through one dual-stack IPv6 socket (`IPV6_V6ONLY` off), and
//! fall back to `0.0.0.0:PORT` when the host has no IPv6
//! (`net/ipsock_posix.go: favoriteAddrFamily`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use metacontroller_engine::serve::{InvalidAddress, parse_bind_address};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Why an endpoint could not listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address is not `host:port`, `:port` or `0`.
    #[error(transparent)]
    Address(#[from] InvalidAddress),
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address tried last.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Binds `address`; `None` when it disables the endpoint.
pub fn bind(address: &str) -> Result<Option<TcpListener>, ListenError> {
    let Some(addr) = parse_bind_address(address)? else {
        return Ok(None);
    };
    let wildcard = address.trim().starts_with(':') || addr.ip() == Ipv6Addr::UNSPECIFIED;
    if !wildcard {
        return listen(addr, false)
            .map(Some)
            .map_err(|source| ListenError::Bind { addr, source });
    }
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, addr.port()));
    match listen(v6, true) {
        Ok(listener) => Ok(Some(listener)),
        Err(err) if no_ipv6(&err) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            listen(v4, false)
                .map(Some)
                .map_err(|source| ListenError::Bind { addr: v4, source })
        }
        Err(source) => Err(ListenError::Bind { addr: v6, source }),
    }
}

/// The errors of an IPv6 socket on a host without IPv6.
fn no_ipv6(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
    ) || matches!(
        err.raw_os_error(),
        Some(97 /* EAFNOSUPPORT */ | 93 /* EPROTONOSUPPORT */)
    )
}

fn listen(addr: SocketAddr, dual_stack: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(std::net::TcpListener::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_only_listens_on_both_families() {
        let listener = bind(":0").unwrap().unwrap();
        let port = listener.local_addr().unwrap().port();
        let v4 = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await;
        assert!(v4.is_ok(), "IPv4 connect: {v4:?}");
        let host_has_ipv6 = std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
        assert_eq!(listener.local_addr().unwrap().is_ipv6(), host_has_ipv6);
        if host_has_ipv6 {
            let v6 = tokio::net::TcpStream::connect((Ipv6Addr::LOCALHOST, port)).await;
            assert!(v6.is_ok(), "IPv6 connect: {v6:?}");
        }
    }

    #[tokio::test]
    async fn explicit_hosts_and_disabled() {
        assert!(bind("0").unwrap().is_none());
        assert!(bind("").unwrap().is_none());
        let listener = bind("127.0.0.1:0").unwrap().unwrap();
        assert!(listener.local_addr().unwrap().is_ipv4());
        assert!(bind("nonsense").is_err());
    }
}

//! `<binary> healthcheck`: the container's own readiness check, for Docker
//! Compose healthchecks in images that carry no curl or wget.
//!
//! The subcommand asks the service already running in the same container for
//! `/readyz` on the port it listens on (`PORT`) and exits 0 on 200, 1 otherwise.

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

use crate::{config::Listen, health::READYZ};

/// The first argument that turns a service binary into its own healthcheck.
pub const SUBCOMMAND: &str = "healthcheck";
/// Compose runs the check every few seconds; an answer slower than this is a failure.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Exits the process with the check's verdict when started as `<binary> healthcheck`;
/// returns otherwise. Call it first in `main`.
pub fn run_if_requested() {
    if std::env::args().nth(1).as_deref() != Some(SUBCOMMAND) {
        return;
    }
    let verdict = Listen::from_env()
        .map_err(|err| err.to_string())
        .and_then(|listen| check(local_address(listen)));
    match verdict {
        Ok(()) => std::process::exit(0),
        Err(why) => {
            eprintln!("not ready: {why}");
            std::process::exit(1);
        }
    }
}

/// Where the service is reached from inside its container: loopback when it
/// listens on every address, its own address otherwise.
fn local_address(listen: Listen) -> SocketAddr {
    let host = if listen.host.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        listen.host
    };
    SocketAddr::new(host, listen.port)
}

/// `GET /readyz` over plain HTTP/1.1: Ok on 200, the status line or the error otherwise.
pub fn check(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|err| format!("{addr}: {err}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|err| err.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|err| err.to_string())?;
    write!(
        stream,
        "GET {READYZ} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|err| format!("{addr}: {err}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|err| format!("{addr}: {err}"))?;
    let response = String::from_utf8_lossy(&response);
    let status_line = response.lines().next().unwrap_or_default();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("{addr}{READYZ} answered {status_line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Readiness, health};

    async fn serve(readiness: Readiness) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, health::routes(readiness)).await });
        addr
    }

    async fn check_off_runtime(addr: SocketAddr) -> Result<(), String> {
        tokio::task::spawn_blocking(move || check(addr)).await.expect("join")
    }

    #[tokio::test]
    async fn ready_service_passes() {
        let addr = serve(Readiness::ready()).await;
        assert_eq!(check_off_runtime(addr).await, Ok(()));
    }

    #[tokio::test]
    async fn unready_service_fails_with_its_status() {
        let readiness = Readiness::not_ready();
        let addr = serve(readiness.clone()).await;
        let err = check_off_runtime(addr).await.expect_err("503 must fail");
        assert!(err.contains("503"), "{err}");
        readiness.set(true);
        assert_eq!(check_off_runtime(addr).await, Ok(()));
    }

    #[tokio::test]
    async fn nothing_listening_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        assert!(check_off_runtime(addr).await.is_err());
    }

    #[test]
    fn unspecified_host_is_reached_on_loopback() {
        let listen = Listen {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
        };
        assert_eq!(local_address(listen), "127.0.0.1:8080".parse().expect("addr"));
    }
}

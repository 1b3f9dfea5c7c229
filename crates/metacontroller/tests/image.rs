//! Builds the container image from the repository's `Dockerfile` and checks
//! it: the binary is `/usr/bin/metacontroller`, the image runs as uid 65532,
//! `--version` answers, and `metacontroller dev` inside the container serves
//! `/healthz` and `/readyz` on the published probe port.
//!
//! It needs a Docker daemon (`docker info` must succeed) and, for the default
//! multi-stage build, a registry to pull `rust:<version>-alpine` from. Where
//! `docker info` fails the test prints that it is skipped and why, and
//! passes; `MC_REQUIRE_DOCKER=1` turns that into a failure (for CI machines
//! that have a daemon). `MC_DOCKER_TARGET=prebuilt` builds the `prebuilt`
//! target instead (a static binary built outside, nothing pulled).
#![cfg(unix)]

mod common;

use common::paths::repo_root;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running docker {args:?}: {e}"))
}

fn checked(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why there is no usable daemon, or `None` when there is one.
fn no_daemon() -> Option<String> {
    match Command::new("docker").arg("info").output() {
        Err(e) => Some(format!("no docker CLI ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "`docker info` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Status line and body of `GET path` on `127.0.0.1:port`.
fn http_get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Removes the container when the test ends, passing or not.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

#[test]
fn image_runs_as_nonroot_and_serves_probes() {
    if let Some(why) = no_daemon() {
        assert!(
            std::env::var_os("MC_REQUIRE_DOCKER").is_none(),
            "MC_REQUIRE_DOCKER is set but {why}"
        );
        eprintln!("image test skipped: {why}; it needs a Docker daemon");
        return;
    }
    let tag = format!("metacontroller-rs:test-{}", std::process::id());
    let root = repo_root();
    let mut build = vec!["build", "-t", &tag];
    let target = std::env::var("MC_DOCKER_TARGET").unwrap_or_default();
    if !target.is_empty() {
        build.extend(["--target", &target]);
    }
    let root_arg = root.to_string_lossy().into_owned();
    build.push(&root_arg);
    checked(&build);

    let user = checked(&["image", "inspect", "--format", "{{.Config.User}}", &tag]);
    assert_eq!(user.trim(), "65532:65532");
    let entrypoint = checked(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}}",
        &tag,
    ]);
    assert_eq!(entrypoint.trim(), r#"["/usr/bin/metacontroller"]"#);

    let version = checked(&["run", "--rm", &tag, "--version"]);
    assert_eq!(
        version.trim(),
        format!("metacontroller {}", env!("CARGO_PKG_VERSION"))
    );

    // `dev` needs no cluster: the embedded API server runs in the container,
    // and the engine's probes are published on a free host port.
    let id = checked(&[
        "run",
        "-d",
        "-p",
        "127.0.0.1::8081",
        &tag,
        "dev",
        "--kubeconfig-out",
        "/tmp/kubeconfig",
    ]);
    let container = Container(id.trim().to_owned());
    let port_line = checked(&["port", &container.0, "8081/tcp"]);
    let port: u16 = port_line
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected `docker port` output {port_line:?}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = match http_get(port, "/healthz") {
            Ok((status, _)) if status.contains(" 200 ") => break,
            Ok((status, body)) => format!("{status} {body}"),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "/healthz did not answer 200 within 60 s (last: {last}); logs:\n{}",
            String::from_utf8_lossy(&docker(&["logs", &container.0]).stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, _) = http_get(port, "/readyz").expect("/readyz");
    assert!(status.contains(" 200 "), "/readyz: {status}");
    drop(container);
    let _ = docker(&["image", "rm", "-f", &tag]);
}

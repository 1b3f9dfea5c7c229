//! Running kubectl (and other command-line tools) from the tests.

use std::process::{Command, Stdio};

/// `MC_KUBECTLS`' first entry, else `kubectl` on `PATH`.
pub fn kubectl_bin() -> String {
    std::env::var("MC_KUBECTLS")
        .ok()
        .and_then(|list| list.split(':').find(|s| !s.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| "kubectl".into())
}

/// Runs a command, feeding `stdin`; panics with its output when it fails.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

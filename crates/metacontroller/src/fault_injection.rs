//! `dev --fault-injection`: turns on the embedded API server's admin
//! endpoints (`/admin/faults`, `/admin/close-watches`, `/admin/compact`;
//! see `metacontroller_apiserver::faults`), so that a hook can be
//! chaos-tested locally: the controller's writes fail as the rules say, and
//! the hook sees the retries and resyncs a flaky cluster causes.

use clap::Args;

/// The flag, flattened into the `dev` arguments.
#[derive(Args, Clone, Debug, Default)]
pub struct FaultInjectionArgs {
    /// Serve the embedded API server's fault-injection endpoints
    /// (/admin/faults, /admin/close-watches, /admin/compact) and print how
    /// to use them.
    #[arg(long)]
    pub fault_injection: bool,
}

impl FaultInjectionArgs {
    /// Sets the server configuration accordingly.
    pub fn configure(&self, config: &mut metacontroller_apiserver::Config) {
        config.admin = self.fault_injection;
    }

    /// The one line that tells how to inject a fault into the server at
    /// `url`, when the flag is on.
    pub fn usage(&self, url: &str) -> Option<String> {
        self.fault_injection.then(|| usage(url))
    }
}

/// The usage line: the endpoint and a `curl` that fails half of all creates
/// with a mix of 409, 429 and 500 (repeatably: the generator is seeded).
fn usage(url: &str) -> String {
    let insecure = if url.starts_with("https:") { "-k " } else { "" };
    format!(
        "fault injection: {url}/admin/faults (DELETE clears); e.g. curl {insecure}-X POST {url}/admin/faults -H 'Content-Type: application/json' -d '{{\"kinds\": [\"Conflict\", \"TooManyRequests\", \"InternalError\"], \"verb\": \"create\", \"fraction\": 0.5}}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_the_usage_names_the_url() {
        let off = FaultInjectionArgs::default();
        let mut config = metacontroller_apiserver::Config::default();
        off.configure(&mut config);
        assert!(!config.admin);
        assert!(off.usage("http://127.0.0.1:1").is_none());

        let on = FaultInjectionArgs {
            fault_injection: true,
        };
        on.configure(&mut config);
        assert!(config.admin);
        let line = on.usage("http://127.0.0.1:8080").unwrap();
        assert!(line.contains("curl -X POST http://127.0.0.1:8080/admin/faults"));
        assert!(!line.contains('\n'));
        // A self-signed certificate needs curl's -k.
        let line = on.usage("https://127.0.0.1:8443").unwrap();
        assert!(line.contains("curl -k -X POST https://127.0.0.1:8443/admin/faults"));
    }
}

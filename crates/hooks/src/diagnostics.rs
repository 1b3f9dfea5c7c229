//! Text for diagnostics, shared by the client, its endpoint and its
//! connection pools: URLs with their password hidden, and the cause chain of
//! a transport error. It depends on no other module of the crate.

use std::error::Error as StdError;

/// Whether a rustls error sits anywhere in the cause chain (rustls errors
/// travel wrapped in `std::io::Error`, whose `source()` skips the wrapped
/// error itself, hence the explicit `get_ref`).
pub(crate) fn is_tls_error(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(wrapped) = io.get_ref()
            && is_tls_error(wrapped)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// The causes of a reqwest error joined with `": "`. reqwest's own message
/// (which repeats the URL) is left out; repeated messages are shown once.
pub(crate) fn error_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        // hyper-util's "client error (Connect)" style wrappers add nothing.
        let wrapper = text.starts_with("client error (") && e.source().is_some();
        if !wrapper && !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        // reqwest messages end with " for url (...)"; keep the part before.
        let text = err.to_string();
        return match text.find(" for url (") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
    }
    parts.join(": ")
}

/// `url` with a password (if any) replaced by `redacted`; unparsable input is
/// returned unchanged.
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

//! Text for diagnostics, shared by the client, its endpoint and its
//! connection pools: URLs with their password hidden, and the cause chain of
//! a transport error. It depends on no other module of the crate.

use std::error::Error as StdError;

/// The `tracing` target of the request and response body lines (`trace`).
pub const BODY_TARGET: &str = "metacontroller_hooks::body";
/// The `tracing` target of the request and response header lines (`trace`).
pub const HEADERS_TARGET: &str = "metacontroller_hooks::headers";

/// Headers as one `name: value; name: value` line. `Authorization`,
/// `Proxy-Authorization`, `Cookie` and `Set-Cookie` values are shown as
/// `<redacted>` whatever they hold; every other value has the client's
/// secrets replaced.
pub(crate) fn show_headers(headers: &[(String, String)], secrets: &[String]) -> String {
    const SENSITIVE: [&str; 4] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ];
    headers
        .iter()
        .map(|(name, value)| {
            let value = if SENSITIVE.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                "<redacted>".to_owned()
            } else {
                redact_secrets(value, secrets)
            };
            format!("{name}: {value}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

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

/// `url` with its secrets hidden: the user name and password (if any) become
/// `redacted`, and so does the value of every query parameter (tokens and
/// signatures travel there). Unparsable input yields a fixed placeholder, as
/// it may hold a secret in a shape that cannot be told apart.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username("redacted");
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("redacted"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<String> = parsed
            .query_pairs()
            .map(|(key, _)| format!("{key}=redacted"))
            .collect();
        parsed.set_query(Some(&pairs.join("&")));
    }
    parsed.to_string()
}

/// `text` with every occurrence of each of `secrets` replaced by
/// `<redacted>` (empty secrets are ignored).
///
/// URLs inside `text` lose their user info and query values as in
/// [`redact_url`]: a request body carries the controller object, and with it
/// the URLs of all its hooks, not only the one being called.
pub(crate) fn redact_secrets(text: &str, secrets: &[String]) -> String {
    let mut text = redact_embedded_urls(text);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "<redacted>");
        }
    }
    text
}

/// Every `http://` or `https://` URL in `text` that has user info or a
/// query, through [`redact_url`]; the rest of `text` unchanged. A URL ends at
/// a quote, whitespace, a backslash or an angle bracket (JSON and log text).
fn redact_embedded_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '<' | '>'))
            .unwrap_or(candidate.len());
        let url = &candidate[..end];
        let sensitive = reqwest::Url::parse(url).is_ok_and(|u| {
            u.query().is_some() || !u.username().is_empty() || u.password().is_some()
        });
        if sensitive {
            out.push_str(&redact_url(url));
        } else {
            out.push_str(url);
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// The strings derived from an `Authorization` header value that must never
/// be shown: the value itself, its credentials (after the scheme) and, for
/// `Basic`, the decoded `user:password` pair and the password.
pub(crate) fn authorization_secrets(value: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut secrets = vec![value.to_owned()];
    if let Some((scheme, credentials)) = value.split_once(' ') {
        let credentials = credentials.trim();
        if credentials.len() >= 4 {
            secrets.push(credentials.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials)
            && let Ok(pair) = String::from_utf8(decoded)
        {
            if let Some((_, password)) = pair.split_once(':')
                && password.len() >= 4
            {
                secrets.push(password.to_owned());
            }
            secrets.push(pair);
        }
    }
    // Longest first, so that a secret inside another is not cut apart.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// The secrets a hook URL carries — its password and the values of its
/// query parameters (tokens and signatures travel there) — as they appear
/// in the URL and decoded, so that the hook's own URL, echoed in a request
/// body (the `controller` object) or an answer, never shows them.
pub(crate) fn url_secrets(url: &reqwest::Url) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(password) = url.password() {
        secrets.push(password.to_owned());
        if let Ok(decoded) = percent_decode(password) {
            secrets.push(decoded);
        }
    }
    if let Some(query) = url.query() {
        for pair in query.split('&') {
            if let Some((_, value)) = pair.split_once('=') {
                secrets.push(value.to_owned());
            }
        }
        secrets.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
    }
    secrets.retain(|s| s.len() >= 4);
    secrets
}

/// `%XX` escapes decoded (as in a URL's user info).
fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_and_query_values() {
        assert_eq!(redact_url("http://u:p@h/x"), "http://redacted:redacted@h/x");
        assert_eq!(redact_url("http://h/x"), "http://h/x");
        assert_eq!(
            redact_url("https://h/x?token=abc&mode=1"),
            "https://h/x?token=redacted&mode=redacted"
        );
        assert_eq!(redact_url("not a url s3cr3t"), "<unparsable URL>");
    }

    #[test]
    fn secrets_are_replaced() {
        let secrets = authorization_secrets("Basic dXNlcjpwYXNzd29yZA==");
        let text = "got Basic dXNlcjpwYXNzd29yZA== i.e. user:password, or password";
        let out = redact_secrets(text, &secrets);
        assert!(!out.contains("dXNlcjpwYXNzd29yZA=="), "{out}");
        assert!(!out.contains("password"), "{out}");
        let bearer = authorization_secrets("Bearer tok-123");
        assert_eq!(
            redact_secrets("echo: Bearer tok-123 / tok-123", &bearer),
            "echo: <redacted> / <redacted>"
        );
    }

    #[test]
    fn url_secrets_are_the_password_and_query_values() {
        let url = reqwest::Url::parse(
            "https://user:p%40ss-word@hook.example/sync?token=abc123&x=ab&sig=a%2Bb%3Dcdef",
        )
        .unwrap();
        let secrets = url_secrets(&url);
        for wanted in [
            "p%40ss-word",
            "p@ss-word",
            "abc123",
            "a%2Bb%3Dcdef",
            "a+b=cdef",
        ] {
            assert!(
                secrets.iter().any(|s| s == wanted),
                "{wanted} in {secrets:?}"
            );
        }
        assert!(
            !secrets.iter().any(|s| s == "ab"),
            "short values are not secrets"
        );
        assert!(url_secrets(&reqwest::Url::parse("http://hook/sync").unwrap()).is_empty());
    }

    #[test]
    fn urls_inside_text_lose_their_secrets() {
        let body = r#"{"sync":{"url":"http://hook/sync"},"finalize":{"url":"https://u:pw12@hook/f?token=abc123"}} see http://x/y?sig=zz99 now"#;
        let shown = redact_secrets(body, &[]);
        assert!(
            !shown.contains("abc123") && !shown.contains("pw12") && !shown.contains("zz99"),
            "{shown}"
        );
        assert!(shown.contains(r#""url":"http://hook/sync""#), "{shown}");
        assert!(
            shown.contains("token=redacted") && shown.contains("sig=redacted"),
            "{shown}"
        );
        assert!(shown.ends_with(" now"), "{shown}");
        assert_eq!(redact_secrets("no urls here", &[]), "no urls here");
    }
}

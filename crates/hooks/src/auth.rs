//! Secret header values and the helpers that build `Authorization` headers.

use std::fmt;

use base64::Engine as _;

use crate::HookError;

/// A string that must never be printed: `Debug` and `Display` both show
/// `<redacted>`. Read the value with [`SecretString::expose_secret`].
///
/// Used for `Authorization` header values so that a stray `{:?}` on an
/// endpoint or client cannot leak credentials into logs or Events.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call only where the value is actually needed
    /// (e.g. when building a request header).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// `Authorization` value for a bearer token: `"Bearer <token>"`, with
/// surrounding whitespace (such as the trailing newline common in Secret
/// data) removed from the token.
pub fn build_bearer(token: &str) -> SecretString {
    SecretString(format!("Bearer {}", token.trim()))
}

/// `Authorization` value for a webhook `authorization` block:
/// `"<type> <credentials>"`, both trimmed; an empty type means `Bearer`.
///
/// The `Basic` type (any case) is refused, as Metacontroller refuses it:
/// basic credentials must come through [`build_basic_auth`].
pub fn build_authorization(auth_type: &str, credentials: &str) -> Result<SecretString, HookError> {
    let auth_type = auth_type.trim();
    if auth_type.eq_ignore_ascii_case("basic") {
        return Err(HookError::InvalidConfig {
            reason: format!(
                "authorization type {auth_type:?} is not supported; use basicAuth instead"
            ),
        });
    }
    let auth_type = if auth_type.is_empty() {
        "Bearer"
    } else {
        auth_type
    };
    Ok(SecretString(format!("{auth_type} {}", credentials.trim())))
}

/// `Authorization` value for HTTP Basic authentication:
/// `"Basic " + base64(user ":" pass)`, where user and password have
/// surrounding whitespace removed first.
///
/// A user name containing `:` is rejected (it would make the pair ambiguous),
/// matching Metacontroller.
pub fn build_basic_auth(user: &str, pass: &str) -> Result<SecretString, HookError> {
    if user.contains(':') {
        return Err(HookError::InvalidConfig {
            reason: "basicAuth username must not contain ':'".to_owned(),
        });
    }
    let pair = format!("{}:{}", user.trim(), pass.trim());
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
    Ok(SecretString(format!("Basic {encoded}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = SecretString::new("Bearer hunter2");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose_secret(), "Bearer hunter2");
    }

    #[test]
    fn bearer_trims_token() {
        assert_eq!(build_bearer("  abc\n").expose_secret(), "Bearer abc");
    }

    #[test]
    fn basic_auth_encodes_trimmed_pair() {
        let v = build_basic_auth("user\n", " pass\n").unwrap();
        // base64("user:pass")
        assert_eq!(v.expose_secret(), "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn basic_auth_rejects_colon_in_user() {
        let err = build_basic_auth("us:er", "pass").unwrap_err();
        assert!(matches!(err, HookError::InvalidConfig { .. }));
        assert!(err.to_string().contains("must not contain ':'"));
    }

    #[test]
    fn generic_authorization() {
        assert_eq!(
            build_authorization("", " tok\n").unwrap().expose_secret(),
            "Bearer tok"
        );
        assert_eq!(
            build_authorization(" Token ", "tok")
                .unwrap()
                .expose_secret(),
            "Token tok"
        );
        assert!(build_authorization("BASIC", "x").is_err());
        assert!(build_authorization(" basic ", "x").is_err());
    }
}

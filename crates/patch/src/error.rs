//! Errors of patch application, classified the way the Kubernetes API server
//! reports them (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`).

/// Why a patch could not be applied.
///
/// Each variant maps to the HTTP status and `Status.reason` the Kubernetes
/// API server answers with; see [`PatchError::status_code`] and
/// [`PatchError::reason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The request body is not a usable patch document: not JSON, or not
    /// the JSON shape the patch type needs, or a malformed strategic merge
    /// directive. Kubernetes answers 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),

    /// A JSON patch operation could not be applied: a `test` failed, a path
    /// does not exist, or the operation is malformed. Kubernetes answers 422
    /// with reason Invalid.
    #[error("JSON patch operation {index} failed: {message}")]
    JsonPatchFailed {
        /// Zero-based index of the failing operation.
        index: usize,
        /// What went wrong.
        message: String,
    },

    /// The patch would produce something that is not a valid object, or
    /// uses a construct Kubernetes rejects as unprocessable (lists of lists
    /// in a strategic merge patch). Kubernetes answers 422 Invalid.
    #[error("{0}")]
    Invalid(String),

    /// A JSON patch with more operations than Kubernetes accepts. Answered
    /// with 413 RequestEntityTooLarge.
    #[error("JSON patch has {count} operations, more than the maximum of {max}")]
    TooManyOperations {
        /// Operations in the patch.
        count: usize,
        /// The limit (10000 in Kubernetes).
        max: usize,
    },

    /// Strategic merge patch was requested for a kind without built-in patch
    /// metadata, such as a custom resource. Kubernetes answers 415
    /// UnsupportedMediaType because it only offers JSON patch, merge patch
    /// and apply patch for those resources.
    #[error(
        "strategic merge patch is not supported for {kind}{}; use one of application/json-patch+json, application/merge-patch+json",
        if group.is_empty() { String::new() } else { format!(".{group}") }
    )]
    StrategicMergeUnsupported {
        /// API group of the object ("" for the core group).
        group: String,
        /// Kind of the object.
        kind: String,
    },

    /// The strategic merge patch is well-formed JSON but cannot be merged
    /// into the object (a list item lacks its merge key, an unknown `$patch`
    /// value, mismatched `$setElementOrder`, ...). Kubernetes passes these
    /// errors through unclassified, which yields 500 with an empty reason.
    #[error("{0}")]
    MergeFailed(String),
}

impl PatchError {
    /// The HTTP status code Kubernetes answers with for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::JsonPatchFailed { .. } | PatchError::Invalid(_) => 422,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::StrategicMergeUnsupported { .. } => 415,
            PatchError::MergeFailed(_) => 500,
        }
    }

    /// The `Status.reason` Kubernetes reports for this error (`""` is
    /// `StatusReasonUnknown`).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => "BadRequest",
            PatchError::JsonPatchFailed { .. } | PatchError::Invalid(_) => "Invalid",
            PatchError::TooManyOperations { .. } => "RequestEntityTooLarge",
            PatchError::StrategicMergeUnsupported { .. } => "UnsupportedMediaType",
            PatchError::MergeFailed(_) => "",
        }
    }

    /// True for errors answered with 422 Invalid.
    pub fn is_invalid(&self) -> bool {
        self.status_code() == 422
    }

    /// True for errors answered with 400 BadRequest.
    pub fn is_bad_request(&self) -> bool {
        self.status_code() == 400
    }

    /// True when the patch type is not supported for the object (415).
    pub fn is_unsupported_media_type(&self) -> bool {
        self.status_code() == 415
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases = [
            (PatchError::BadRequest("x".into()), 400, "BadRequest"),
            (
                PatchError::JsonPatchFailed {
                    index: 0,
                    message: "x".into(),
                },
                422,
                "Invalid",
            ),
            (PatchError::Invalid("x".into()), 422, "Invalid"),
            (
                PatchError::TooManyOperations {
                    count: 10001,
                    max: 10000,
                },
                413,
                "RequestEntityTooLarge",
            ),
            (
                PatchError::StrategicMergeUnsupported {
                    group: "example.com".into(),
                    kind: "Widget".into(),
                },
                415,
                "UnsupportedMediaType",
            ),
            (PatchError::MergeFailed("x".into()), 500, ""),
        ];
        for (err, code, reason) in cases {
            assert_eq!(err.status_code(), code, "{err}");
            assert_eq!(err.reason(), reason, "{err}");
            assert_eq!(err.is_invalid(), code == 422, "{err}");
            assert_eq!(err.is_bad_request(), code == 400, "{err}");
            assert_eq!(err.is_unsupported_media_type(), code == 415, "{err}");
        }
    }

    #[test]
    fn messages() {
        let core = PatchError::StrategicMergeUnsupported {
            group: String::new(),
            kind: "Thing".into(),
        };
        assert!(
            core.to_string()
                .starts_with("strategic merge patch is not supported for Thing;")
        );
        let grouped = PatchError::StrategicMergeUnsupported {
            group: "example.com".into(),
            kind: "Widget".into(),
        };
        assert!(grouped.to_string().contains("Widget.example.com"));
        let too_many = PatchError::TooManyOperations { count: 3, max: 2 };
        assert_eq!(
            too_many.to_string(),
            "JSON patch has 3 operations, more than the maximum of 2"
        );
    }
}

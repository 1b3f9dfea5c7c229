//! OpenAPI documents, computed from the registry as plain JSON (and, for
//! v2, protobuf) values. Nothing here knows about HTTP: the handlers
//! negotiate the format with [`crate::negotiate`], call the document
//! builders and send the result with the matching content type.
//!
//! What clients do with these documents, and therefore what they must contain:
//!
//! * **OpenAPI v3** ([`v3`]) (`/openapi/v3`, `/openapi/v3/{api/v1|apis/g/v}`): kubectl
//!   decides whether a kind supports server-side field validation by finding a
//!   PATCH operation tagged with the kind's `x-kubernetes-group-version-kind`
//!   whose parameters include the `fieldValidation` query parameter
//!   (`k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go`). `kubectl
//!   explain` locates the collection path of the resource and then the
//!   component schema carrying the same GVK (`k8s.io/kubectl/pkg/explain/v2/templates/plaintext.tmpl`).
//!   `kubectl apply` computes a strategic merge patch from these schemas only
//!   when the PATCH request body lists `application/strategic-merge-patch+json`
//!   (`k8s.io/kubectl/pkg/cmd/apply/patcher.go`, `gvkSupportsPatchOpenAPIV3`).
//! * **OpenAPI v2** ([`v2`], encoded by [`gnostic`]) (`/openapi/v2`): client-go always asks for the gnostic
//!   protobuf encoding and proto-decodes the body (`OpenAPISchema` in
//!   `discovery_client.go`). kubectl 1.27 and 1.28 fetch it eagerly for `apply`,
//!   `create`, `replace`, `edit`, `diff` and `explain` (`Validator` in
//!   `k8s.io/kubectl/pkg/cmd/util/factory_client_access.go`) and fail when it
//!   cannot be decoded, so [`v2::openapi_v2_protobuf`] encodes the document.
//!
//! Both versions describe the same REST operations ([`operations`]).

use serde_json::Value;

mod gnostic;
mod operations;
mod v2;
mod v3;

pub use v2::{openapi_v2, openapi_v2_protobuf};
pub use v3::{openapi_v3_group_version, openapi_v3_root};

pub(super) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(super) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// A stable digest of a JSON document (FNV-1a, 128 bits, upper-case hex),
/// for the `hash` query parameter of OpenAPI v3 URLs and for ETags.
pub fn document_hash(doc: &Value) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{hash:032X}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_hash_is_stable_hex() {
        let a = document_hash(&json!({"a": 1}));
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_eq!(a, document_hash(&json!({"a": 1})));
        assert_ne!(a, document_hash(&json!({"a": 2})));
    }
}

//! Well-known names: API group, annotations, labels, finalizers, condition
//! reasons and the server-side-apply field manager that Metacontroller uses
//! on the objects it manages.

/// API group of the Metacontroller CRDs.
pub const GROUP: &str = "metacontroller.k8s.io";
/// The only served (and stored) version of the Metacontroller CRDs.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of Metacontroller's own objects.
pub const API_VERSION: &str = "metacontroller.k8s.io/v1alpha1";

/// Annotation carried by every Metacontroller CRD.
pub const API_APPROVED_ANNOTATION: &str = "api-approved.kubernetes.io";
/// Value of [`API_APPROVED_ANNOTATION`].
pub const API_APPROVED_VALUE: &str = "unapproved, request not yet submitted";

/// Annotation holding the hook's desired object, used as the base of the
/// client-side three-way merge ("dynamic apply").
pub const LAST_APPLIED_ANNOTATION: &str = "metacontroller.k8s.io/last-applied-configuration";

/// Annotation on every attachment created by a DecoratorController; its value
/// is the DecoratorController's name. Attachments without it are not observed.
pub const DECORATOR_CONTROLLER_ANNOTATION: &str = "metacontroller.k8s.io/decorator-controller";

/// Label used as the generated selector (`spec.generateSelector: true`); its
/// value is the parent's UID.
pub const CONTROLLER_UID_LABEL: &str = "controller-uid";

/// Label on Metacontroller ControllerRevisions naming the parent's API group.
pub const REVISION_API_GROUP_LABEL: &str = "metacontroller.k8s.io/apiGroup";
/// Label on Metacontroller ControllerRevisions naming the parent's resource (plural).
pub const REVISION_RESOURCE_LABEL: &str = "metacontroller.k8s.io/resource";

/// Prefix of the finalizer a CompositeController puts on its parents.
pub const COMPOSITE_FINALIZER_PREFIX: &str = "metacontroller.io/compositecontroller-";
/// Prefix of the finalizer a DecoratorController puts on its targets.
pub const DECORATOR_FINALIZER_PREFIX: &str = "metacontroller.io/decoratorcontroller-";

/// Finalizer name for the CompositeController called `controller_name`:
/// `metacontroller.io/compositecontroller-<name>`.
pub fn composite_finalizer(controller_name: &str) -> String {
    format!("{COMPOSITE_FINALIZER_PREFIX}{controller_name}")
}

/// Finalizer name for the DecoratorController called `controller_name`:
/// `metacontroller.io/decoratorcontroller-<name>`.
pub fn decorator_finalizer(controller_name: &str) -> String {
    format!("{DECORATOR_FINALIZER_PREFIX}{controller_name}")
}

/// Default field manager for server-side apply (`--apply-strategy-ssa-field-manager`)
/// and the event source component.
pub const FIELD_MANAGER: &str = "metacontroller";

/// Parent status condition type maintained during rolling updates.
pub const UPDATED_CONDITION: &str = "Updated";
/// `Updated` condition reason: the rollout waits for updated children to become ready.
pub const REASON_ROLLOUT_WAITING: &str = "RolloutWaiting";
/// `Updated` condition reason: the rollout is moving children to the latest revision.
pub const REASON_ROLLOUT_PROGRESSING: &str = "RolloutProgressing";
/// `Updated` condition reason: every child is on the latest revision.
pub const REASON_ON_LATEST_REVISION: &str = "OnLatestRevision";

/// Default `parentResource.revisionHistory.fieldPaths`.
pub const DEFAULT_REVISION_FIELD_PATHS: &[&str] = &["spec"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_names() {
        assert_eq!(
            composite_finalizer("catset-controller"),
            "metacontroller.io/compositecontroller-catset-controller"
        );
        assert_eq!(
            decorator_finalizer("service-per-pod"),
            "metacontroller.io/decoratorcontroller-service-per-pod"
        );
    }

    #[test]
    fn api_version_is_group_slash_version() {
        assert_eq!(API_VERSION, format!("{GROUP}/{VERSION}"));
    }
}

//! Tests of the module as a whole.

use std::time::Duration;

use kube::Resource;

use super::*;

const CATSET: &str = r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: CompositeController
metadata:
  name: catset-controller
spec:
  parentResource:
    apiVersion: ctl.enisoc.com/v1
    resource: catsets
    revisionHistory:
      fieldPaths:
      - spec.template
    labelSelector:
      matchLabels:
        team: cats
      matchExpressions:
      - key: tier
        operator: In
        values: [frontend, backend]
    ignoreStatusChanges: true
  childResources:
  - apiVersion: v1
    resource: pods
    updateStrategy:
      method: RollingRecreate
      statusChecks:
        conditions:
        - type: Ready
          status: "True"
        - type: Synced
          reason: Done
  - apiVersion: v1
    resource: persistentvolumeclaims
  resyncPeriodSeconds: 30
  generateSelector: true
  hooks:
    sync:
      version: v2
      webhook:
        url: http://catset-controller.metacontroller/sync
        timeout: 1m30s
        responseUnMarshallMode: loose
        etag:
          enabled: true
          cacheTimeoutSeconds: 60
          cacheCleanupSeconds: 120
    finalize:
      webhook:
        service:
          name: catset-controller
          namespace: metacontroller
          port: 8080
          protocol: https
        path: /finalize
        caBundle:
          configMapRef:
            name: ca
            namespace: metacontroller
        clientTLS:
          secretRef:
            name: client
            namespace: metacontroller
          certKey: cert.pem
        authorization:
          type: Bearer
          secretRef:
            name: token
            namespace: metacontroller
            key: token
    customize:
      version: v1
      webhook:
        url: http://catset-controller.metacontroller/customize
        basicAuth:
          secretRef:
            name: basic
            namespace: metacontroller
          usernameKey: user
    preUpdateChild:
      webhook:
        url: http://x/pre
    postUpdateChild:
      webhook:
        url: http://x/post
  endpointConfigs:
  - host: catset-controller.metacontroller
    caBundle:
      inline: |
        -----BEGIN CERTIFICATE-----
        MIIB
        -----END CERTIFICATE-----
    basicAuth:
      secretRef:
        name: basic
        namespace: metacontroller
      passwordKey: pw
"#;

const SERVICE_PER_POD: &str = r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: DecoratorController
metadata:
  name: service-per-pod
spec:
  resources:
  - apiVersion: apps/v1
    resource: statefulsets
    annotationSelector:
      matchExpressions:
      - {key: service-per-pod-label, operator: Exists}
      matchAnnotations:
        enabled: "yes"
    labelSelector:
      matchLabels:
        app: nginx
  attachments:
  - apiVersion: v1
    resource: services
    updateStrategy:
      method: InPlace
  resyncPeriodSeconds: 5
  hooks:
    sync:
      webhook:
        url: http://service-per-pod.metacontroller/sync-service-per-pod
        timeout: 500ms
    finalize:
      version: v2
      webhook:
        url: http://service-per-pod.metacontroller/finalize-service-per-pod
        responseUnMarshallMode: strict
"#;

fn yaml_to_json(yaml: &str) -> serde_json::Value {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn composite_controller_round_trips() {
    let original = yaml_to_json(CATSET);
    let cc: CompositeController = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(serde_json::to_value(&cc).unwrap(), original);

    let sync = cc.sync_hook().unwrap();
    assert_eq!(sync.version(), HookVersion::V2);
    assert_eq!(
        sync.response_unmarshall_mode(),
        ResponseUnmarshallMode::Loose
    );
    assert_eq!(sync.timeout().unwrap(), Duration::from_secs(90));
    assert!(sync.webhook.as_ref().unwrap().etag_enabled());

    let finalize = cc.finalize_hook().unwrap();
    assert_eq!(finalize.version(), HookVersion::V1);
    assert_eq!(
        finalize.response_unmarshall_mode(),
        ResponseUnmarshallMode::Loose
    );
    let webhook = finalize.webhook.as_ref().unwrap();
    assert_eq!(
        webhook.endpoint_url().unwrap(),
        "https://catset-controller.metacontroller:8080/finalize"
    );
    assert!(webhook.has_connection_settings());
    let tls = webhook.client_tls.as_ref().unwrap();
    assert_eq!(tls.cert_key(), "cert.pem");
    assert_eq!(tls.private_key_key(), "tls.key");
    let ca = webhook
        .ca_bundle
        .as_ref()
        .unwrap()
        .config_map_ref
        .as_ref()
        .unwrap();
    assert_eq!(ca.key(), "ca.crt");

    let customize = cc.customize_hook().unwrap();
    let basic = customize
        .webhook
        .as_ref()
        .unwrap()
        .basic_auth
        .as_ref()
        .unwrap();
    assert_eq!(basic.username_key(), "user");
    assert_eq!(basic.password_key(), "password");

    let children = cc.spec.child_resources();
    assert_eq!(
        children[0].update_method(),
        ChildUpdateMethod::RollingRecreate
    );
    assert!(children[0].update_method().is_rolling());
    assert_eq!(children[0].status_checks().len(), 2);
    assert_eq!(children[1].update_method(), ChildUpdateMethod::OnDelete);
    assert!(children[1].status_checks().is_empty());
    assert_eq!(
        cc.spec.parent_resource.revision_field_paths(),
        vec!["spec.template"]
    );
    assert!(cc.spec.parent_resource.ignores_status_changes());
    assert!(cc.spec.generates_selector());
    assert_eq!(
        cc.finalizer_name(),
        "metacontroller.io/compositecontroller-catset-controller"
    );
    assert_eq!(
        cc.endpoint_configs()[0]
            .basic_auth
            .as_ref()
            .unwrap()
            .password_key(),
        "pw"
    );
}

#[test]
fn decorator_controller_round_trips() {
    let original = yaml_to_json(SERVICE_PER_POD);
    let dc: DecoratorController = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(serde_json::to_value(&dc).unwrap(), original);

    assert_eq!(
        dc.spec.attachments()[0].update_method(),
        ChildUpdateMethod::InPlace
    );
    let sync = dc.sync_hook().unwrap();
    assert_eq!(sync.timeout().unwrap(), Duration::from_millis(500));
    assert_eq!(
        sync.response_unmarshall_mode(),
        ResponseUnmarshallMode::Loose
    );
    let finalize = dc.finalize_hook().unwrap();
    assert_eq!(
        finalize.response_unmarshall_mode(),
        ResponseUnmarshallMode::Strict
    );
    assert!(dc.customize_hook().is_none());
    assert_eq!(
        dc.finalizer_name(),
        "metacontroller.io/decoratorcontroller-service-per-pod"
    );
}

#[test]
fn minimal_objects_round_trip_without_added_fields() {
    let cc = serde_json::json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "CompositeController",
        "metadata": {"name": "x"},
        "spec": {"parentResource": {"apiVersion": "v1", "resource": "things"}}
    });
    let parsed: CompositeController = serde_json::from_value(cc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), cc);
    assert!(!parsed.has_hooks());
    assert_eq!(
        parsed.spec.parent_resource.revision_field_paths(),
        vec!["spec"]
    );

    let dc = serde_json::json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "DecoratorController",
        "metadata": {"name": "y"},
        "spec": {"resources": []},
        "status": {}
    });
    let parsed: DecoratorController = serde_json::from_value(dc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), dc);
}

#[test]
fn controller_revision_has_no_spec_wrapper() {
    let rev = serde_json::json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "ControllerRevision",
        "metadata": {"name": "catsets.ctl.enisoc.com-5463ba99b804a121d35d14a5ab74546d1e8ba953", "namespace": "default"},
        "parentPatch": {"spec": {"template": {"metadata": {"labels": {"app": "nginx"}}}}},
        "children": [{"apiGroup": "", "kind": "Pod", "names": ["nginx-backend-0", "nginx-backend-1"]}]
    });
    let parsed: ControllerRevision = serde_json::from_value(rev.clone()).unwrap();
    assert_eq!(parsed.spec.children.as_ref().unwrap()[0].names.len(), 2);
    assert_eq!(
        parsed.spec.parent_patch["spec"]["template"]["metadata"]["labels"]["app"],
        "nginx"
    );
    assert_eq!(serde_json::to_value(&parsed).unwrap(), rev);
    assert_eq!(ControllerRevision::plural(&()), "controllerrevisions");
    assert_eq!(
        ControllerRevision::api_version(&()),
        "metacontroller.k8s.io/v1alpha1"
    );
}

#[test]
fn resource_metadata() {
    assert_eq!(CompositeController::plural(&()), "compositecontrollers");
    assert_eq!(DecoratorController::plural(&()), "decoratorcontrollers");
    assert_eq!(CompositeController::kind(&()), "CompositeController");
    assert_eq!(DecoratorController::group(&()), "metacontroller.k8s.io");
}

#[test]
fn hook_defaults() {
    let hook = Hook::default();
    assert_eq!(hook.version(), HookVersion::V1);
    assert_eq!(
        hook.response_unmarshall_mode(),
        ResponseUnmarshallMode::Loose
    );
    assert_eq!(hook.timeout().unwrap(), Duration::from_secs(10));

    let v2: Hook = serde_json::from_value(
        serde_json::json!({"version": "v2", "webhook": {"url": "http://h/s"}}),
    )
    .unwrap();
    assert_eq!(
        v2.response_unmarshall_mode(),
        ResponseUnmarshallMode::Strict
    );
    let v2_loose: Hook = serde_json::from_value(serde_json::json!({
        "version": "v2", "webhook": {"url": "http://h/s", "responseUnMarshallMode": "loose"}
    }))
    .unwrap();
    assert_eq!(
        v2_loose.response_unmarshall_mode(),
        ResponseUnmarshallMode::Loose
    );
    let v1_strict: Hook = serde_json::from_value(serde_json::json!({
        "webhook": {"url": "http://h/s", "responseUnMarshallMode": "strict", "timeout": "0s"}
    }))
    .unwrap();
    assert_eq!(
        v1_strict.response_unmarshall_mode(),
        ResponseUnmarshallMode::Strict
    );
    assert_eq!(v1_strict.timeout().unwrap(), Duration::from_secs(10));

    // The JSON key has a capital M; the lower-case spelling is not the field.
    let wrong_case: Webhook =
        serde_json::from_value(serde_json::json!({"responseUnmarshallMode": "strict"})).unwrap();
    assert_eq!(wrong_case.response_unmarshall_mode, None);
    assert!(serde_json::from_value::<Hook>(serde_json::json!({"version": "v3"})).is_err());
}

#[test]
fn webhook_url_forms() {
    let service_default = Webhook {
        path: Some("/sync".into()),
        service: Some(ServiceReference {
            name: "hooks".into(),
            namespace: "ns".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        service_default.endpoint_url().unwrap(),
        "http://hooks.ns:80/sync"
    );
    let url_wins = Webhook {
        url: Some("https://example.com/x".into()),
        ..service_default.clone()
    };
    assert_eq!(url_wins.endpoint_url().unwrap(), "https://example.com/x");
    let no_path = Webhook {
        path: None,
        ..service_default.clone()
    };
    assert_eq!(no_path.endpoint_url(), Err(WebhookConfigError::MissingUrl));
    let mut no_ns = service_default;
    no_ns.service.as_mut().unwrap().namespace.clear();
    assert_eq!(
        no_ns.endpoint_url(),
        Err(WebhookConfigError::IncompleteService)
    );
}

#[test]
fn update_methods() {
    for (text, method) in [
        ("OnDelete", ChildUpdateMethod::OnDelete),
        ("Recreate", ChildUpdateMethod::Recreate),
        ("InPlace", ChildUpdateMethod::InPlace),
        ("RollingRecreate", ChildUpdateMethod::RollingRecreate),
        ("RollingInPlace", ChildUpdateMethod::RollingInPlace),
    ] {
        assert_eq!(serde_json::to_value(method).unwrap(), text);
        assert_eq!(method.as_str(), text);
    }
    assert_eq!(ChildUpdateMethod::default(), ChildUpdateMethod::OnDelete);
    assert_eq!(
        ChildUpdateMethod::RollingInPlace.without_rolling(),
        ChildUpdateMethod::InPlace
    );
    assert_eq!(
        ChildUpdateMethod::RollingRecreate.without_rolling(),
        ChildUpdateMethod::Recreate
    );
    assert!(!ChildUpdateMethod::InPlace.is_rolling());
    let rule = DecoratorControllerAttachmentRule::default();
    assert_eq!(rule.update_method(), ChildUpdateMethod::OnDelete);
}

#[test]
fn related_rule_selection() {
    let parse =
        |v: serde_json::Value| -> RelatedResourceRule { serde_json::from_value(v).unwrap() };
    let base = serde_json::json!({"apiVersion": "v1", "resource": "configmaps"});
    let with = |extra: serde_json::Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        parse(v)
    };
    assert_eq!(
        parse(base.clone()).selection(),
        Ok(RelatedSelection::Labels)
    );
    assert_eq!(
        with(serde_json::json!({"labelSelector": {}})).selection(),
        Ok(RelatedSelection::Labels)
    );
    assert_eq!(
        with(serde_json::json!({"labelSelector": {}, "namespace": "a"})).selection(),
        Ok(RelatedSelection::NamespaceAndLabels)
    );
    assert_eq!(
        with(serde_json::json!({"namespace": "a"})).selection(),
        Ok(RelatedSelection::NamespaceAndNames)
    );
    assert_eq!(
        with(serde_json::json!({"names": ["x"]})).selection(),
        Ok(RelatedSelection::NamespaceAndNames)
    );
    assert_eq!(
        with(serde_json::json!({"namespaceSelector": {"matchLabels": {"a": "b"}}})).selection(),
        Ok(RelatedSelection::NamespaceSelector)
    );
    assert_eq!(
        with(serde_json::json!({"names": ["x"], "labelSelector": {}})).selection(),
        Err(RelatedRuleError::NamesWithSelector)
    );
    assert_eq!(
        with(serde_json::json!({"namespace": "a", "namespaceSelector": {}})).selection(),
        Err(RelatedRuleError::NamespaceWithNamespaceSelector)
    );
    // Empty namespace and empty names count as unset.
    assert_eq!(
        with(serde_json::json!({"namespace": "", "names": []})).selection(),
        Ok(RelatedSelection::Labels)
    );
}

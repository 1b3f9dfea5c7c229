//! Pruning, defaulting, validation and the Go spelling of values, on one
//! schema that uses every keyword the server implements.

use serde_json::{Value, json};

use super::duplicates::json_patch_errors;
use super::format::format_matches;
use super::go_text::go_float;
use super::*;

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                    "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                    "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
                    "ratio": {"type": "number"},
                    "on": {"type": "boolean"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "note": {"type": "string", "nullable": true},
                    "tags": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"},
                             "x-kubernetes-list-type": "set"},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "protocol": {"type": "string", "default": "TCP"}
                            }
                        }
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                              "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                    "id": {"type": "string", "format": "uuid"}
                }
            },
            "status": {"type": "object", "properties": {"ready": {"type": "integer", "default": 0}}}
        }
    })
}

fn errors(obj: Value) -> Vec<String> {
    validate(&schema(), &obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn spec(s: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": s})
}

#[test]
fn prune_drops_unspecified_fields_and_reports_their_paths() {
    let mut o = json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}, "bogus": 1},
        "spec": {"replicas": 1, "foo": "bar", "ports": [{"name": "a", "junk": 1}],
                 "labels": {"k": "v"}, "extra": {"anything": {"deep": 1}, "known": {"a": "x", "b": "y"}},
                 "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "zzz": 1},
                              "spec": {"x": "1", "y": "2"}, "other": 1}},
        "status": {"ready": 1, "gone": true},
        "top": 1
    });
    let paths = prune(&schema(), &mut o);
    assert_eq!(
        paths,
        vec![
            "metadata.bogus",
            "spec.extra.known.b",
            "spec.foo",
            "spec.ports[0].junk",
            "spec.template.metadata.zzz",
            "spec.template.other",
            "spec.template.spec.y",
            "status.gone",
            "top",
        ]
    );
    assert_eq!(
        o,
        json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {"replicas": 1, "ports": [{"name": "a"}], "labels": {"k": "v"},
                     "extra": {"anything": {"deep": 1}, "known": {"a": "x"}},
                     "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                  "spec": {"x": "1"}}},
            "status": {"ready": 1}
        })
    );
}

#[test]
fn prune_keeps_everything_below_preserve_unknown_fields() {
    let s = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let mut o = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {"a": [1, {"b": 2}]}, "x": 1});
    let before = o.clone();
    assert!(prune(&s, &mut o).is_empty());
    assert_eq!(o, before);
    // Arrays of preserved objects keep their items' unknown fields.
    let s = json!({"type": "object", "properties": {"l": {"type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                  "properties": {"k": {"type": "object", "properties": {}}}}}}});
    let mut o = json!({"l": [{"u": 1, "k": {"v": 2}}]});
    assert_eq!(prune(&s, &mut o), vec!["l[0].k.v"]);
    assert_eq!(o, json!({"l": [{"u": 1, "k": {}}]}));
}

#[test]
fn prune_without_properties_drops_all_object_fields() {
    let s =
        json!({"type": "object", "properties": {"m": {"type": "object"}, "a": {"type": "array"}}});
    let mut o = json!({"m": {"x": 1}, "a": [{"y": 1}, 2]});
    assert_eq!(prune(&s, &mut o), vec!["a[0].y", "m.x"]);
    assert_eq!(o, json!({"m": {}, "a": [{}, 2]}));
}

#[test]
fn embedded_type_fields_must_be_strings() {
    let mut o = spec(json!({"replicas": 1, "template": {"apiVersion": 1, "kind": "Pod"}}));
    prune(&schema(), &mut o);
    assert_eq!(o["spec"]["template"], json!({"kind": "Pod"}));
}

#[test]
fn nulls_of_non_nullable_fields_without_default_are_dropped() {
    let mut o = spec(json!({"replicas": 1, "name": null, "note": null, "color": null}));
    prune_nulls(&schema(), &mut o);
    assert_eq!(
        o["spec"],
        json!({"replicas": 1, "note": null, "color": null})
    );
}

#[test]
fn defaults_fill_missing_and_null_fields_recursively() {
    let mut o = spec(
        json!({"replicas": 1, "color": null, "ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}],
                            "labels": {"k": null, "j": "v"}}),
    );
    apply_defaults(&schema(), &mut o);
    assert_eq!(o["spec"]["color"], "red");
    assert_eq!(
        o["spec"]["ports"],
        json!([{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}])
    );
    assert_eq!(o["spec"]["labels"], json!({"k": "x", "j": "v"}));
    assert!(o.get("status").is_none(), "no default for a missing object");
    let mut o = json!({"status": {}});
    apply_defaults(&schema(), &mut o);
    assert_eq!(o["status"]["ready"], 0);

    // Defaults inside a defaulted value apply too; nullable nulls stay.
    let s = json!({"type": "object", "properties": {
        "a": {"type": "object", "default": {}, "properties": {"b": {"type": "integer", "default": 3}}},
        "n": {"type": "string", "nullable": true, "default": "d"}}});
    let mut o = json!({"n": null});
    apply_defaults(&s, &mut o);
    assert_eq!(o, json!({"a": {"b": 3}, "n": null}));
    // Array items that are null take the items' default.
    let s = json!({"type": "array", "items": {"type": "string", "default": "z"}});
    let mut o = json!(["a", null]);
    apply_defaults(&s, &mut o);
    assert_eq!(o, json!(["a", "z"]));
}

#[test]
fn type_errors_are_worded_like_kubernetes() {
    assert_eq!(
        errors(spec(json!({"replicas": "string"}))),
        vec![
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        ]
    );
    let e = validate(&schema(), &spec(json!({"replicas": "x"})));
    assert_eq!(e[0].kind.reason(), "FieldValueTypeInvalid");
    assert_eq!(
        errors(spec(json!({"replicas": 1, "on": "yes", "ratio": "1"}))),
        vec![
            r#"spec.on: Invalid value: "string": spec.on in body must be of type boolean: "string""#,
            r#"spec.ratio: Invalid value: "string": spec.ratio in body must be of type number: "string""#,
        ]
    );
    // Integral floats are integers; integers are numbers.
    assert!(errors(spec(json!({"replicas": 2.0, "ratio": 3}))).is_empty());
    assert_eq!(
        errors(spec(json!({"replicas": 1.5}))),
        vec![
            r#"spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number""#
        ]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "tags": "a"}))),
        vec![
            r#"spec.tags: Invalid value: "string": spec.tags in body must be of type array: "string""#
        ]
    );
    assert_eq!(
        errors(json!({"spec": []})),
        vec![r#"spec: Invalid value: "array": spec in body must be of type object: "array""#]
    );
}

#[test]
fn int_or_string_and_nullable() {
    assert!(errors(spec(json!({"replicas": 1, "port": 80}))).is_empty());
    assert!(errors(spec(json!({"replicas": 1, "port": "http"}))).is_empty());
    assert_eq!(
        errors(spec(json!({"replicas": 1, "port": true}))),
        vec![
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        ]
    );
    assert!(errors(spec(json!({"replicas": 1, "note": null}))).is_empty());
    assert_eq!(
        errors(spec(json!({"replicas": null}))),
        vec![
            r#"spec.replicas: Invalid value: "null": spec.replicas in body must be of type integer: "null""#
        ]
    );
}

#[test]
fn required_enum_bounds_lengths_pattern() {
    assert_eq!(
        errors(spec(json!({}))),
        vec!["spec.replicas: Required value"]
    );
    let e = validate(&schema(), &spec(json!({})));
    assert_eq!(
        (e[0].kind.reason(), e[0].body().as_str()),
        ("FieldValueRequired", "Required value")
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "color": "purple"}))),
        vec![r#"spec.color: Unsupported value: "purple": supported values: "red", "green""#]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 0}))),
        vec![
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
        ]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 11}))),
        vec![
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
        ]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "name": "toolong"}))),
        vec!["spec.name: Too long: may not be longer than 5"]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "name": "a"}))),
        vec![r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "name": "AB"}))),
        vec![r#"spec.name: Invalid value: "AB": spec.name in body should match '^[a-z]+$'"#]
    );
    // Lengths count characters, not bytes.
    assert!(errors(spec(json!({"replicas": 1, "name": "ééééé"}))).len() == 1);
}

#[test]
fn exclusive_bounds_and_multiples() {
    let s = json!({"type": "object", "properties": {
        "a": {"type": "number", "minimum": 1, "exclusiveMinimum": true},
        "b": {"type": "number", "maximum": 2.5, "exclusiveMaximum": true},
        "c": {"type": "integer", "multipleOf": 3},
        "d": {"type": "number", "multipleOf": 0.5}}});
    let e: Vec<String> = validate(&s, &json!({"a": 1, "b": 2.5, "c": 4, "d": 0.75}))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        vec![
            "a: Invalid value: 1: a in body should be greater than 1",
            "b: Invalid value: 2.5: b in body should be less than 2.5",
            "c: Invalid value: 4: c in body should be a multiple of 3",
            "d: Invalid value: 0.75: d in body should be a multiple of 0.5",
        ]
    );
    assert!(validate(&s, &json!({"a": 2, "b": 2, "c": 9, "d": 1.5})).is_empty());
}

#[test]
fn item_counts_and_list_types() {
    assert_eq!(
        errors(spec(json!({"replicas": 1, "tags": []}))),
        vec!["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
    );
    let e = validate(
        &schema(),
        &spec(json!({"replicas": 1, "tags": ["a", "b", "c", "d"]})),
    );
    assert_eq!(
        e[0].to_string(),
        "spec.tags: Too many: 4: must have at most 3 items"
    );
    assert_eq!(e[0].kind.reason(), "FieldValueTooMany");
    assert_eq!(
        errors(spec(json!({"replicas": 1, "tags": ["a", "b", "a"]}))),
        vec![r#"spec.tags[2]: Duplicate value: "a""#]
    );
    assert_eq!(
        errors(spec(
            json!({"replicas": 1, "ports": [{"name": "a"}, {"name": "a"}, {}]})
        )),
        vec![
            "spec.ports[2].name: Required value",
            r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a"}"#,
        ]
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "tags": ["a", 1]}))),
        vec![
            r#"spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer""#
        ]
    );
}

#[test]
fn additional_properties_and_property_counts() {
    assert_eq!(
        errors(spec(json!({"replicas": 1, "labels": {"k": 1}}))),
        vec![
            r#"spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type string: "integer""#
        ]
    );
    let s = json!({"type": "object", "properties": {"m": {"type": "object", "minProperties": 2}}});
    assert_eq!(
        validate(&s, &json!({"m": {"a": 1}}))[0].to_string(),
        "m: Invalid value: 1: m in body should have at least 2 properties"
    );
    let s = json!({"type": "object", "properties": {"m": {"type": "object", "maxProperties": 1}}});
    assert_eq!(
        validate(&s, &json!({"m": {"a": 1, "b": 2}}))[0].to_string(),
        "m: Too many: 2: must have at most 1 items"
    );
}

#[test]
fn formats() {
    assert!(
        errors(spec(
            json!({"replicas": 1, "id": "123e4567-e89b-12d3-a456-426614174000"})
        ))
        .is_empty()
    );
    assert_eq!(
        errors(spec(json!({"replicas": 1, "id": "nope"}))),
        vec![r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#]
    );
    for (f, good, bad) in [
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "::1", "1.2.3.4"),
        ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
        ("date", "2024-02-29", "2023-02-29"),
        ("date-time", "2024-01-02T03:04:05Z", "2024-01-02"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("hostname", "example.com", "-bad-"),
        ("mac", "01:23:45:67:89:ab", "01:23:45"),
        ("email", "a@b.c", "nobody"),
        ("hexcolor", "#fff", "#ffff"),
        (
            "uuid4",
            "123e4567-e89b-42d3-a456-426614174000",
            "123e4567-e89b-12d3-a456-426614174000",
        ),
        ("unknown-format", "anything", ""),
    ] {
        assert!(format_matches(f, good), "{f} {good}");
        assert_eq!(format_matches(f, bad), f == "unknown-format", "{f} {bad}");
    }
}

#[test]
fn embedded_resources_need_type_fields() {
    assert_eq!(
        errors(spec(json!({"replicas": 1, "template": {"kind": ""}}))),
        vec![
            "spec.template.apiVersion: Required value",
            "spec.template.kind: Required value"
        ]
    );
}

#[test]
fn composition_keywords() {
    let s = json!({"type": "object", "properties": {
        "a": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "b": {"allOf": [{"minimum": 1}, {"maximum": 3}]},
        "c": {"not": {"type": "string"}}}});
    assert!(validate(&s, &json!({"a": 1, "b": 2, "c": 1})).is_empty());
    let e: Vec<String> = validate(&s, &json!({"a": true, "b": 5, "c": "x"}))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        vec![
            r#"a: Invalid value: true: "a" must validate at least one schema (anyOf)"#,
            "b: Invalid value: 5: b in body should be less than or equal to 3",
            r#"c: Invalid value: "x": "c" must not validate the schema (not)"#,
        ]
    );
}

#[test]
fn unchanged_values_are_not_validated_again() {
    let old =
        spec(json!({"replicas": 100, "name": "BAD", "ports": [{"name": "a", "protocol": 1}]}));
    // Only the changed field is validated.
    let new = spec(json!({"replicas": 100, "name": "BAD", "color": "blue",
                          "ports": [{"name": "b"}, {"name": "a", "protocol": 1}]}));
    let e: Vec<String> = validate_update(&schema(), &new, Some(&old))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        vec![r#"spec.color: Unsupported value: "blue": supported values: "red", "green""#]
    );
    assert_eq!(validate(&schema(), &new).len(), 4);
}

#[test]
fn field_errors_become_an_invalid_status() {
    let errs = validate(&schema(), &spec(json!({"replicas": "x", "color": "c"})));
    let s = invalid("example.com", "Widget", "w", &errs).to_status();
    assert_eq!(s["code"], 422);
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(
        s["message"],
        r#"Widget.example.com "w" is invalid: [spec.color: Unsupported value: "c": supported values: "red", "green", spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"]"#
    );
    assert_eq!(s["details"]["causes"][1]["field"], "spec.replicas");
    assert_eq!(s["details"]["causes"][1]["reason"], "FieldValueTypeInvalid");
    assert_eq!(
        s["details"]["causes"][1]["message"],
        r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#
    );
    assert_eq!(s["details"]["kind"], "Widget");
}

#[test]
fn duplicates_are_found_in_document_order() {
    let body = br#"{"spec": {"a": 1, "a": 2, "b": {"c": 1, "c": 2}, "l": [{"d": 1, "d": 1}]}, "spec": {}}"#;
    assert_eq!(duplicate_fields(body, false), vec!["a", "c", "d", "spec"]);
    assert_eq!(
        duplicate_fields(b"a: 1\nb: {c: 1, c: 2}\n", true),
        vec!["c"]
    );
    assert!(duplicate_fields(b"not json", false).is_empty());
    assert_eq!(
        json_patch_errors(
            br#"[{"op": "add", "path": "/a", "value": 1, "foo": "bar"}, {"op": "add", "path": "/b", "path": "/c", "value": {"x": 1, "x": 2}}]"#
        ),
        vec![
            r#"json patch unknown field "foo""#,
            r#"json patch duplicate field "path""#,
            r#"json patch duplicate field "x""#,
        ]
    );
}

#[test]
fn values_print_like_go() {
    assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    assert_eq!(go_float(1.0), "1");
    assert_eq!(go_float(0.5), "0.5");
    assert_eq!(go_float(1e21), "1e+21");
    assert_eq!(go_float(1.5e-7), "1.5e-07");
    assert_eq!(go_value(&json!(null)), "null");
    assert_eq!(
        go_value(&json!([1, "a", null])),
        r#"[]interface {}{1, "a", interface {}(nil)}"#
    );
}

//! A minimal protobuf encoder for the subset of Swagger 2.0 that
//! [`openapi_v2`](super::openapi_v2) produces. Field numbers are those of `OpenAPIv2.proto`;
//! vendor extensions become `NamedAny` entries whose `Any.yaml` holds the
//! value as JSON text (which YAML parsers read unchanged, as kubectl does with
//! `x-kubernetes-group-version-kind`). Keywords outside that subset (numeric
//! limits, `enum`, `default`, `example`, header and form parameters) are not
//! encoded.
//!
//! The bytes are written with the shared [`Writer`].
//!
//! Generated `prost` types were considered and not used: generating them
//! needs `protoc` and the gnostic `.proto` files at build time, for about 25
//! messages of which a few fields each are written here; and the document is
//! encoded once per set of served resources and then cached, so encoding
//! speed does not matter.

use crate::protobuf::wire::Writer;

/// The fields of a gnostic message, filled from the JSON document.
trait JsonFields {
    /// A proto3 string; the empty string is the default and is omitted.
    fn string(&mut self, field: u32, value: Option<&Value>);
    /// `repeated string`, from a JSON array or a single string.
    fn strings(&mut self, field: u32, value: Option<&Value>);
    /// A proto3 bool; `false` is the default and is omitted.
    fn boolean(&mut self, field: u32, value: Option<&Value>);
    /// `repeated NamedAny vendor_extension` from the `x-` keys of `obj`.
    fn extensions(&mut self, field: u32, obj: &Map<String, Value>);
}

impl JsonFields for Writer {
    fn string(&mut self, field: u32, value: Option<&Value>) {
        if let Some(s) = value.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            self.bytes(field, s.as_bytes());
        }
    }

    fn strings(&mut self, field: u32, value: Option<&Value>) {
        match value {
            Some(Value::Array(items)) => {
                for item in items {
                    self.string(field, Some(item));
                }
            }
            Some(v @ Value::String(_)) => self.string(field, Some(v)),
            _ => {}
        }
    }

    fn boolean(&mut self, field: u32, value: Option<&Value>) {
        if value.and_then(Value::as_bool) == Some(true) {
            self.uint(field, 1);
        }
    }

    fn extensions(&mut self, field: u32, obj: &Map<String, Value>) {
        for (key, value) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut any = Writer::new();
            any.bytes(2, value.to_string().as_bytes());
            let mut named = Writer::new();
            named.bytes(1, key.as_bytes());
            named.message(2, any);
            self.message(field, named);
        }
    }
}

use serde_json::{Map, Value};

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

pub(super) fn document(doc: &Value) -> Vec<u8> {
    let mut w = Writer::new();
    let Some(obj) = doc.as_object() else {
        return w.into_bytes();
    };
    w.string(1, obj.get("swagger"));
    if let Some(info) = object(obj.get("info")) {
        let mut i = Writer::new();
        i.string(1, info.get("title"));
        i.string(2, info.get("version"));
        i.string(3, info.get("description"));
        i.extensions(7, info);
        w.message(2, i);
    }
    w.string(3, obj.get("host"));
    w.string(4, obj.get("basePath"));
    w.strings(5, obj.get("schemes"));
    w.strings(6, obj.get("consumes"));
    w.strings(7, obj.get("produces"));
    if let Some(paths) = object(obj.get("paths")) {
        let mut p = Writer::new();
        p.extensions(1, paths);
        for (path, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let mut named = Writer::new();
            named.bytes(1, path.as_bytes());
            named.message(2, path_item(item));
            p.message(2, named);
        }
        w.message(8, p);
    }
    if let Some(definitions) = object(obj.get("definitions")) {
        let mut d = Writer::new();
        for (name, s) in definitions {
            d.message(1, named_schema(name, s));
        }
        w.message(9, d);
    }
    w.extensions(16, obj);
    w.into_bytes()
}

fn path_item(item: &Value) -> Writer {
    let mut w = Writer::new();
    let Some(obj) = item.as_object() else {
        return w;
    };
    w.string(1, obj.get("$ref"));
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = object(obj.get(method)) {
            w.message(field, operation(op));
        }
    }
    parameters(&mut w, 9, obj.get("parameters"));
    w.extensions(10, obj);
    w
}

fn operation(op: &Map<String, Value>) -> Writer {
    let mut w = Writer::new();
    w.strings(1, op.get("tags"));
    w.string(2, op.get("summary"));
    w.string(3, op.get("description"));
    w.string(5, op.get("operationId"));
    w.strings(6, op.get("produces"));
    w.strings(7, op.get("consumes"));
    parameters(&mut w, 8, op.get("parameters"));
    if let Some(responses) = object(op.get("responses")) {
        w.message(9, responses_message(responses));
    }
    w.strings(10, op.get("schemes"));
    w.boolean(11, op.get("deprecated"));
    w.extensions(13, op);
    w
}

/// `repeated ParametersItem`.
fn parameters(w: &mut Writer, field: u32, list: Option<&Value>) {
    let Some(Value::Array(list)) = list else {
        return;
    };
    for p in list.iter().filter_map(Value::as_object) {
        let mut item = Writer::new();
        if p.contains_key("$ref") {
            let mut reference = Writer::new();
            reference.string(1, p.get("$ref"));
            reference.string(2, p.get("description"));
            item.message(2, reference);
        } else {
            item.message(1, parameter(p));
        }
        w.message(field, item);
    }
}

/// `Parameter`: a `BodyParameter`, or a `NonBodyParameter` holding a
/// query or path sub-schema.
fn parameter(p: &Map<String, Value>) -> Writer {
    let mut w = Writer::new();
    match p.get("in").and_then(Value::as_str) {
        Some("body") => {
            let mut b = Writer::new();
            b.string(1, p.get("description"));
            b.string(2, p.get("name"));
            b.string(3, p.get("in"));
            b.boolean(4, p.get("required"));
            if let Some(s) = p.get("schema") {
                b.message(5, schema(s));
            }
            b.extensions(6, p);
            w.message(1, b);
        }
        Some("query") => {
            let mut q = Writer::new();
            q.boolean(1, p.get("required"));
            q.string(2, p.get("in"));
            q.string(3, p.get("description"));
            q.string(4, p.get("name"));
            q.string(6, p.get("type"));
            q.string(7, p.get("format"));
            q.boolean(20, p.get("uniqueItems"));
            q.extensions(23, p);
            let mut non_body = Writer::new();
            non_body.message(3, q);
            w.message(2, non_body);
        }
        Some("path") => {
            let mut q = Writer::new();
            q.boolean(1, p.get("required"));
            q.string(2, p.get("in"));
            q.string(3, p.get("description"));
            q.string(4, p.get("name"));
            q.string(5, p.get("type"));
            q.string(6, p.get("format"));
            q.boolean(19, p.get("uniqueItems"));
            q.extensions(22, p);
            let mut non_body = Writer::new();
            non_body.message(4, q);
            w.message(2, non_body);
        }
        _ => {}
    }
    w
}

fn responses_message(responses: &Map<String, Value>) -> Writer {
    let mut w = Writer::new();
    for (code, value) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
        let Some(r) = value.as_object() else {
            continue;
        };
        let mut response_value = Writer::new();
        if r.contains_key("$ref") {
            let mut reference = Writer::new();
            reference.string(1, r.get("$ref"));
            response_value.message(2, reference);
        } else {
            let mut response = Writer::new();
            response.string(1, r.get("description"));
            if let Some(s) = r.get("schema") {
                let mut schema_item = Writer::new();
                schema_item.message(1, schema(s));
                response.message(2, schema_item);
            }
            response.extensions(5, r);
            response_value.message(1, response);
        }
        let mut named = Writer::new();
        named.bytes(1, code.as_bytes());
        named.message(2, response_value);
        w.message(1, named);
    }
    w.extensions(2, responses);
    w
}

fn named_schema(name: &str, s: &Value) -> Writer {
    let mut named = Writer::new();
    named.bytes(1, name.as_bytes());
    named.message(2, schema(s));
    named
}

fn schema(s: &Value) -> Writer {
    let mut w = Writer::new();
    let Some(obj) = s.as_object() else {
        return w;
    };
    w.string(1, obj.get("$ref"));
    w.string(2, obj.get("format"));
    w.string(3, obj.get("title"));
    w.string(4, obj.get("description"));
    w.strings(19, obj.get("required"));
    match obj.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Writer::new();
            a.uint(2, u64::from(*b));
            w.message(21, a);
        }
        Some(v @ Value::Object(_)) => {
            let mut a = Writer::new();
            a.message(1, schema(v));
            w.message(21, a);
        }
        _ => {}
    }
    if obj.contains_key("type") {
        let mut t = Writer::new();
        t.strings(1, obj.get("type"));
        w.message(22, t);
    }
    match obj.get("items") {
        Some(Value::Array(items)) => {
            let mut i = Writer::new();
            for item in items {
                i.message(1, schema(item));
            }
            w.message(23, i);
        }
        Some(item @ Value::Object(_)) => {
            let mut i = Writer::new();
            i.message(1, schema(item));
            w.message(23, i);
        }
        _ => {}
    }
    if let Some(Value::Array(all_of)) = obj.get("allOf") {
        for item in all_of {
            w.message(24, schema(item));
        }
    }
    if let Some(props) = object(obj.get("properties")) {
        let mut p = Writer::new();
        for (name, s) in props {
            p.message(1, named_schema(name, s));
        }
        w.message(25, p);
    }
    w.boolean(27, obj.get("readOnly"));
    w.extensions(31, obj);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::registry;
    use crate::openapi::{openapi_v2, openapi_v2_protobuf};
    use crate::protobuf::wire::{Reader, Wire};
    use serde_json::json;

    /// The fields of an encoded message, in order.
    fn decode(buf: &[u8]) -> Vec<(u32, Wire<'_>)> {
        let mut reader = Reader::new(buf);
        let mut out = Vec::new();
        while let Some(field) = reader.next_field().expect("valid protobuf") {
            out.push(field);
        }
        out
    }

    fn bytes_of<'a>(fields: &[(u32, Wire<'a>)], number: u32) -> Vec<&'a [u8]> {
        fields
            .iter()
            .filter_map(|(n, f)| match f {
                Wire::Bytes(b) if *n == number => Some(*b),
                _ => None,
            })
            .collect()
    }

    fn text_of(fields: &[(u32, Wire<'_>)], number: u32) -> Option<String> {
        bytes_of(fields, number)
            .first()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn openapi_v2_protobuf_encodes_the_document() {
        let reg = registry();
        let json_doc = openapi_v2(&reg);
        let encoded = openapi_v2_protobuf(&reg);
        let document = decode(&encoded);
        assert_eq!(text_of(&document, 1).as_deref(), Some("2.0"));
        let info = decode(bytes_of(&document, 2)[0]);
        assert_eq!(text_of(&info, 1).as_deref(), Some("Kubernetes"));

        // Paths: every JSON path is a NamedPathItem.
        let paths = decode(bytes_of(&document, 8)[0]);
        let named = bytes_of(&paths, 2);
        assert_eq!(named.len(), json_doc["paths"].as_object().unwrap().len());
        let target = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
        let item = named
            .iter()
            .map(|b| decode(b))
            .find(|f| text_of(f, 1).as_deref() == Some(target))
            .expect("deployment item path");
        let path_item = decode(bytes_of(&item, 2)[0]);
        // PathItem.patch = 8; path-level parameters = 9.
        assert_eq!(bytes_of(&path_item, 9).len(), 3);
        let patch = decode(bytes_of(&path_item, 8)[0]);
        assert_eq!(
            text_of(&patch, 5).as_deref(),
            Some("patchAppsV1NamespacedDeployment")
        );
        let consumes: Vec<String> = bytes_of(&patch, 7)
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert!(consumes.contains(&"application/strategic-merge-patch+json".to_string()));

        // Operation.parameters = 8: ParametersItem.parameter(1) ->
        // Parameter.non_body_parameter(2) -> query_parameter_sub_schema(3), name = 4.
        let query_names: Vec<String> = bytes_of(&patch, 8)
            .iter()
            .filter_map(|item| {
                let parameter = decode(bytes_of(&decode(item), 1)[0]);
                let non_body = bytes_of(&parameter, 2);
                let query = decode(bytes_of(&decode(non_body.first()?), 3)[0]);
                text_of(&query, 4)
            })
            .collect();
        assert!(query_names.contains(&"fieldValidation".to_string()));

        // Operation.vendor_extension = 13: NamedAny{name, Any{yaml = 2}}.
        let gvk = bytes_of(&patch, 13)
            .iter()
            .map(|b| decode(b))
            .find(|f| text_of(f, 1).as_deref() == Some("x-kubernetes-group-version-kind"))
            .expect("gvk extension");
        let any = decode(bytes_of(&gvk, 2)[0]);
        let yaml: Value = serde_json::from_str(&text_of(&any, 2).unwrap()).unwrap();
        assert_eq!(
            yaml,
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );

        // Required path parameters are encoded as true booleans.
        let name_param = bytes_of(&path_item, 9)
            .iter()
            .map(|item| decode(bytes_of(&decode(item), 1)[0]))
            .map(|parameter| decode(bytes_of(&parameter, 2)[0]))
            .find_map(|non_body| bytes_of(&non_body, 4).first().map(|b| decode(b)))
            .expect("path parameter");
        assert!(matches!(name_param[0], (1, Wire::Varint(1))));

        // Definitions are present and empty.
        assert_eq!(bytes_of(&document, 9), vec![&[] as &[u8]]);
    }

    #[test]
    fn protobuf_varints_span_bytes() {
        let doc = json!({"swagger": "x".repeat(300)});
        let encoded = document(&doc);
        assert_eq!(&encoded[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(encoded.len(), 303);
    }
}

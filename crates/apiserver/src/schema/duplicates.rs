//! Duplicate fields of a request body: strict field validation reports
//! them as `json: duplicate field "x"`, and so must the server here, before
//! the body is parsed into a map that keeps only the last one.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;

use super::go_text::go_quote;

/// Walks any serde value, recording the keys that appear twice in a map.
struct Duplicates<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Duplicates(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(Duplicates(&mut *self.0))?;
            if !seen.insert(key.clone()) {
                self.0.push(key);
            }
        }
        Ok(())
    }
}

/// The keys that appear twice in one map of a JSON (or YAML) document, in
/// document order; an undecodable document has none.
pub fn duplicate_fields(body: &[u8], yaml: bool) -> Vec<String> {
    let mut out = Vec::new();
    let ok = if yaml {
        Duplicates(&mut out)
            .deserialize(serde_yaml::Deserializer::from_slice(body))
            .is_ok()
    } else {
        Duplicates(&mut out)
            .deserialize(&mut serde_json::Deserializer::from_slice(body))
            .is_ok()
    };
    if ok { out } else { Vec::new() }
}

/// The strict decoding errors of a JSON patch's operations: unknown fields
/// of an operation and duplicate fields anywhere, in document order.
pub(super) fn json_patch_errors(body: &[u8]) -> Vec<String> {
    struct Ops<'a>(&'a mut Vec<String>);
    struct Op<'a>(&'a mut Vec<String>);

    impl<'de> DeserializeSeed<'de> for Ops<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Ops<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of operations")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Op(&mut *self.0))?.is_some() {}
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Op<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Op<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an operation")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !["op", "path", "from", "value"].contains(&key.as_str()) {
                    self.0.push(format!("unknown field {}", go_quote(&key)));
                }
                let mut nested = Vec::new();
                map.next_value_seed(Duplicates(&mut nested))?;
                if !seen.insert(key.clone()) {
                    self.0.push(format!("duplicate field {}", go_quote(&key)));
                }
                self.0.extend(
                    nested
                        .iter()
                        .map(|k| format!("duplicate field {}", go_quote(k))),
                );
            }
            Ok(())
        }
    }

    let mut out = Vec::new();
    let ok = Ops(&mut out)
        .deserialize(&mut serde_json::Deserializer::from_slice(body))
        .is_ok();
    if !ok {
        return Vec::new();
    }
    out.into_iter().map(|e| format!("json patch {e}")).collect()
}

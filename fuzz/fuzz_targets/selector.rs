//! Label selector parsing, in both of its forms: the string syntax of
//! `?labelSelector=` and the JSON `matchLabels`/`matchExpressions` object.
//! A selector that parses must print back to a string that parses to the
//! same selector, and matching must not panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use metacontroller_selectors::Selector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(selector) = Selector::parse(text) {
        let printed = selector.to_string();
        let reparsed = Selector::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
        assert_eq!(reparsed.to_string(), printed, "printing is stable");
        let mut labels = BTreeMap::new();
        for (i, part) in text.split([',', '=']).enumerate() {
            labels.insert(format!("k{i}"), part.to_owned());
        }
        let _ = selector.matches(&labels);
    }
    if let Ok(value) = serde_json::from_slice(data) {
        let _ = Selector::from_label_selector(&value);
    }
    let _ = metacontroller_selectors::label_key_errors(text);
    let _ = metacontroller_selectors::label_value_errors(text);
});

//! The dynamic-apply three-way merge: observed, last-applied and desired
//! objects (three JSON documents separated by NUL bytes). The merge must not
//! panic, must be deterministic, and applying the same desired state again
//! and again must settle: by the third apply nothing changes. (One apply is
//! not always enough: where the observed and desired types differ, the merge
//! keeps Metacontroller's rules — an observed list meeting a desired scalar
//! becomes `null` first — and the next apply writes the desired value.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use metacontroller_apply::{apply_update, merge, sanitize_for_ssa};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(observed), Ok(last), Ok(desired)) = (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
        serde_json::from_slice::<Value>(c),
    ) else {
        return;
    };
    let merged = merge(&observed, &last, &desired);
    assert_eq!(
        merged,
        merge(&observed, &last, &desired),
        "merge is deterministic"
    );
    let mut current = observed;
    for round in 1..=3 {
        match apply_update(&current, &desired) {
            Ok(Some(next)) => {
                assert!(
                    round < 3,
                    "the third apply of the same desired state still changes the object"
                );
                current = next;
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = sanitize_for_ssa(&desired);
});

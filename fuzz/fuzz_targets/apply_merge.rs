//! The dynamic-apply three-way merge: observed, last-applied and desired
//! objects (three JSON documents separated by NUL bytes). The merge must not
//! panic, must be deterministic, and applying the same desired state to its
//! own result must change nothing more.
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
    if let Ok(Some(updated)) = apply_update(&observed, &desired) {
        // The update carries the new last-applied state; applying the same
        // desired state on top of it again is a fixed point.
        if let Ok(again) = apply_update(&updated, &desired) {
            assert!(
                again.is_none(),
                "a second apply of the same desired state changes nothing"
            );
        }
    }
    let _ = sanitize_for_ssa(&desired);
});

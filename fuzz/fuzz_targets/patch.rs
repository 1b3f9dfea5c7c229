//! Patch bodies as the API server receives them: JSON patch, merge patch
//! and strategic merge patch (for a built-in kind with patch metadata, and
//! for an unknown one) over an original object. The first input byte picks
//! the kind, the rest is "original NUL patch".
#![no_main]

use libfuzzer_sys::fuzz_target;
use metacontroller_patch::{PatchType, apply_patch, strategic_merge_patch};
use serde_json::Value;

const KINDS: [(&str, &str); 4] = [
    ("apps", "Deployment"),
    ("", "Pod"),
    ("", "ConfigMap"),
    ("example.com", "Widget"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(split) = rest.iter().position(|b| *b == 0) else {
        return;
    };
    let (original, patch) = (&rest[..split], &rest[split + 1..]);
    let Ok(original) = serde_json::from_slice::<Value>(original) else {
        return;
    };
    let pt = match selector % 3 {
        0 => PatchType::Json,
        1 => PatchType::Merge,
        _ => PatchType::StrategicMerge,
    };
    let (group, kind) = KINDS[usize::from(selector / 3) % KINDS.len()];
    if let Ok(patched) = apply_patch(pt, group, kind, &original, patch) {
        assert!(patched.is_object(), "a successful patch gives an object");
    }
    if let Ok(patch) = serde_json::from_slice::<Value>(patch) {
        let _ = strategic_merge_patch(&original, &patch, None);
    }
});

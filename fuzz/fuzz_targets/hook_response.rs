//! Hook response decoding: any body a hook returns, decoded as each
//! response type in loose and strict mode, must give a response or an error,
//! never a panic; a decoded response must encode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metacontroller_api::ResponseUnmarshallMode;
use metacontroller_api::hook_wire::{
    CompositeHookResponse, CustomizeHookResponse, DecoratorHookResponse, HookResponse,
    decode_response,
};

fn check<T: HookResponse + serde::Serialize>(body: &[u8]) {
    for mode in [
        ResponseUnmarshallMode::Loose,
        ResponseUnmarshallMode::Strict,
    ] {
        if let Ok(decoded) = decode_response::<T>(body, mode) {
            serde_json::to_vec(&decoded.response).expect("a decoded response encodes");
            if matches!(mode, ResponseUnmarshallMode::Strict) {
                assert!(
                    decoded.issues.is_empty(),
                    "strict mode fails instead of tolerating"
                );
            }
        }
    }
}

fuzz_target!(|body: &[u8]| {
    check::<CompositeHookResponse>(body);
    check::<DecoratorHookResponse>(body);
    check::<CustomizeHookResponse>(body);
});

//! Fuzz target: the wire decoder must never panic, and whatever it accepts must re-encode and decode to the
//! same envelope.

#![no_main]

use libfuzzer_sys::fuzz_target;
use odc_model::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = wire::decode(data) {
        // Unknown kinds lose their body by design; everything else must survive a round trip.
        if !matches!(envelope.message, wire::Message::Unknown { .. }) {
            let frame = wire::encode(&envelope).expect("a decoded envelope re-encodes");
            let again = wire::decode(&frame).expect("a re-encoded envelope decodes");
            // Compare encodings, not values: a NaN the fuzzer wrote is unequal to itself.
            assert_eq!(wire::encode(&again).expect("re-encodes"), frame);
        }
    }
});

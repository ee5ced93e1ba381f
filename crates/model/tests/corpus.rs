//! Feeds the wire decoder the fuzzing seed corpus (`fuzz/seeds`) and the frozen samples, with every truncation
//! and many corruptions of each: the same checks as the fuzz target, in plain tests.

use odc_model::wire;
use std::path::PathBuf;

fn check(data: &[u8]) {
    if let Ok(envelope) = wire::decode(data)
        && !matches!(envelope.message, wire::Message::Unknown { .. })
    {
        let frame = wire::encode(&envelope).expect("a decoded envelope re-encodes");
        let again = wire::decode(&frame).expect("a re-encoded envelope decodes");
        assert_eq!(wire::encode(&again).expect("re-encodes"), frame);
    }
}

fn files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [root.join("fuzz/seeds"), root.join("tests/frozen")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            out.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_none_or(|e| e != "json")),
            );
        }
    }
    out.sort();
    out
}

#[test]
fn corpus_decodes_without_panics() {
    let files = files();
    assert!(files.len() >= 12, "corpus too small: {}", files.len());
    for path in files {
        let data = std::fs::read(&path).expect("readable");
        check(&data);
        for cut in 0..data.len() {
            check(&data[..cut]);
        }
        // Corrupt one byte at a time with a few values, at every position of small frames and a stride of big ones.
        let stride = (data.len() / 400).max(1);
        for i in (0..data.len()).step_by(stride) {
            for v in [0x00, 0xff, 0xc1, 0xdd, 0x7f, data[i] ^ 0x10] {
                let mut bad = data.clone();
                bad[i] = v;
                check(&bad);
            }
        }
    }
}

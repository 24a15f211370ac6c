//! Replays every seed corpus under `fuzz/corpus/` through its target, so
//! stable CI exercises what the fuzzers found without needing nightly.

use std::path::Path;

#[test]
fn every_corpus_folder_has_a_target_and_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0usize;
    for entry in std::fs::read_dir(&root).expect("fuzz/corpus exists") {
        let dir = entry.expect("readable corpus entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let target = duplex_fuzz::TARGETS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("corpus folder {name} has no fuzz target"))
            .1;
        for file in std::fs::read_dir(&dir).expect("readable corpus folder") {
            let path = file.expect("readable corpus file").path();
            let data = std::fs::read(&path).expect("readable seed");
            target(&data);
            replayed += 1;
        }
    }
    for (name, _) in duplex_fuzz::TARGETS {
        assert!(
            root.join(name).is_dir(),
            "fuzz target {name} has no seed corpus folder"
        );
    }
    assert!(replayed > 0, "no seed was replayed");
}

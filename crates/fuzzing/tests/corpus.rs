//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) and every
//! crash they found and we fixed (`fuzz/regressions/<target>/`) through its
//! target, and then a few thousand pseudo-random inputs derived from them,
//! so `make test` holds what `make fuzz` learned.

use spindrive_fuzzing::TARGETS;
use std::path::PathBuf;

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a readable corpus file");
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_kept_input_still_passes_its_target() {
    for (target, check) in TARGETS {
        let corpus = inputs("corpus", target);
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} holds no seed");
        for (path, bytes) in corpus.iter().chain(&inputs("regressions", target)) {
            let outcome = std::panic::catch_unwind(|| check(bytes));
            assert!(outcome.is_ok(), "{target} fails on {}", path.display());
        }
    }
}

/// Mutations of the seeds (xorshift-driven byte flips, insertions and
/// truncations): not a fuzzer, but a cheap net for `make test`.
#[test]
fn mutated_seeds_pass_every_target() {
    const ROUNDS: usize = 2000;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (target, check) in TARGETS {
        let seeds = inputs("corpus", target);
        for round in 0..ROUNDS {
            let mut bytes = seeds[round % seeds.len()].1.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % (bytes.len() + 1);
                match next() % 3 {
                    0 if at < bytes.len() => bytes[at] = next() as u8,
                    1 => bytes.insert(at, next() as u8),
                    _ => bytes.truncate(at),
                }
            }
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{target} fails on {bytes:?}");
        }
    }
}

#[test]
fn every_target_has_a_fuzz_binary_and_nothing_else_does() {
    let manifest =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/Cargo.toml"))
            .expect("fuzz/Cargo.toml");
    let binaries: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| bin.lines().find_map(|line| line.strip_prefix("name = ")))
        .map(|name| name.trim_matches('"'))
        .collect();
    let targets: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(binaries, targets);
}

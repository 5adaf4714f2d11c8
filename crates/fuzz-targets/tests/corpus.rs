//! The committed fuzz corpus, replayed on stable through the functions the
//! fuzz targets call: a crash the fuzzer found and was fixed stays fixed.

use conn_fuzz_targets::{TARGETS, corpus_dir, replay};

#[test]
fn every_target_has_a_corpus_and_passes_every_input_of_it() {
    for t in TARGETS {
        let dir = corpus_dir(t.name);
        let n = replay(t, &dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(n > 0, "{} is empty", dir.display());
        println!("{}: {n} inputs passed", t.name);
    }
}

#[test]
fn every_seed_passes_its_own_target() {
    for t in TARGETS {
        let seeds = (t.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", t.name);
        for (name, input) in seeds {
            if std::panic::catch_unwind(|| (t.run)(&input)).is_err() {
                panic!("{}: its seed {name} fails", t.name);
            }
        }
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for t in TARGETS {
        let file = fuzz.join("fuzz_targets").join(format!("{}.rs", t.name));
        let source =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            source.contains(&format!("target(\"{}\")", t.name)),
            "{}",
            file.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "fuzz/Cargo.toml lacks {}",
            t.name
        );
    }
}

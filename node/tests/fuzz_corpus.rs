//! The committed fuzz corpora (`node/fuzz/corpus/<target>/`), replayed through the same `remesa::fuzzing`
//! functions the cargo-fuzz targets run, as an ordinary test: no nightly, no libFuzzer, no second instrumented build.
//! A missing or empty corpus folder fails, and so does a target that the fuzz project and the node list differently.
//! Finding new inputs is `scripts/faults/fuzz.sh`'s job.

use std::path::{Path, PathBuf};

use remesa::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file of one target's corpus through its function; all failing files are named, not only the first.
fn replay(name: &str) {
    let run = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target {name} in remesa::fuzzing::TARGETS"));
    let dir = fuzz_dir().join("corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (every fuzz target needs a committed corpus)",
                dir.display()
            )
        })
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.retain(|p| p.is_file());
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus files", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::panic::catch_unwind(|| run(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {name} corpus files fail (the panics are printed above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        /// The tests above cover exactly the node's targets.
        #[test]
        fn every_target_has_a_replay_test() {
            let tested = [$(stringify!($name)),*];
            let targets: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(targets, tested);
        }
    };
}

corpus_tests!(intent, whatsapp_body, telegram_body, httpsig, money, phone);

/// The fuzz project builds one binary per target, each calling its `remesa::fuzzing` function, and the corpus
/// folder has no stray target.
#[test]
fn fuzz_project_matches_the_targets() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("node/fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"")),
            "node/fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let path = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            source.contains(&format!("remesa::fuzzing::{name}(data)")),
            "{} does not call remesa::fuzzing::{name}",
            path.display()
        );
    }
    let mut folders: Vec<String> = std::fs::read_dir(fuzz_dir().join("corpus"))
        .expect("node/fuzz/corpus")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(folders, names, "corpus folders vs remesa::fuzzing::TARGETS");
}

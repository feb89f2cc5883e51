//! `soundcheck validate`.

use crate::helpers::{Scratch, code, soundcheck, stderr, stdout};

#[test]
fn the_bundled_example_is_valid() {
    let out = soundcheck(&["validate", "--config", "examples/app-config.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("config is valid: 33 checks, 3 tracks"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn every_problem_is_reported_with_its_location_and_exit_code_2() {
    let s = Scratch::new();
    let config = s.file(
        "bad.yaml",
        "soundcheck:\n  checks:\n    - id: a\n      rule: { factRef: 'x:default/y', path: '$[', operator: eq, value: 1 }\n  tracks:\n    - id: t\n      levels:\n        - ordinal: 1\n          checks: [ { id: zzz } ]\n",
    );
    let out = soundcheck(&["validate", "--config", &config]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{config}:4:45: invalid JSONPath `$[`")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{config}:4:61: unknown operator `eq`")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{config}:9:27: track `t` names unknown check `zzz`"
        )),
        "{err}"
    );
    assert!(
        err.contains("3 error(s) in config; nothing was evaluated"),
        "{err}"
    );
}

#[test]
fn evaluate_refuses_an_invalid_config_without_writing_results() {
    let s = Scratch::new();
    let config = s.file("bad.yaml", "soundcheck:\n  checks:\n    - id: a\n      rule: { factRef: nope, operator: equal, value: 1 }\n");
    let results = s.path("results.jsonl");
    let out = soundcheck(&[
        "evaluate",
        "--config",
        &config,
        "--catalog",
        "examples/catalog/catalog-info.yaml",
        "--results-out",
        &results,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("fact ref `nope` is not of the form `source:scope/name`"),
        "{}",
        stderr(&out)
    );
    assert!(!std::path::Path::new(&results).exists());
}

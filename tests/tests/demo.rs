//! End-to-end: `radstudy demo`, the README's first command, as a user runs it.

use std::process::Command;

use radstudy_e2e::workspace_binary;

#[test]
fn demo_command_prints_metrics_and_writes_study() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("demo");
    let output = Command::new(workspace_binary("radstudy")?)
        .args(["demo", "--no-progress", "--out"])
        .arg(&out)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // The demo models the whole lesion and each habitat per sequence, and
    // fuses the sequences on the best region: 3 rows per model, one per
    // cohort.
    assert!(stdout.contains("model"), "{stdout}");
    for model in ["T1W_whole", "T2FS_whole", "T1W_inner", "T2FS_inner"] {
        assert!(stdout.contains(model), "{model} missing from\n{stdout}");
    }
    assert!(stdout.contains("fusion_"), "no fusion model in\n{stdout}");
    let metrics = std::fs::read_to_string(out.join("study/metrics.csv"))?;
    let models: std::collections::BTreeSet<&str> = metrics
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .collect();
    assert_eq!(metrics.lines().count(), 1 + 3 * models.len(), "{metrics}");
    assert!(out.join("study/habitats.json").is_file());
    assert!(out.join("study/report.html").is_file());

    // Each worker wrote its habitat maps locally: a label NIfTI, its JSON
    // key and an overlay PNG per patient and sequence.
    let maps: Vec<_> = std::fs::read_dir(out.join("workers"))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .flat_map(|entry| std::fs::read_dir(entry.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with("_habitats.nii.gz"))
        .collect();
    assert!(
        !maps.is_empty(),
        "no habitat map under {}",
        out.join("workers").display()
    );

    // The workers were stopped: their logs end with the shutdown line.
    for center in ["A", "B"] {
        let log = std::fs::read_to_string(out.join(format!("workers/worker_{center}.log")))?;
        assert!(
            log.contains("worker stopped"),
            "worker {center} log:\n{log}"
        );
    }
    Ok(())
}

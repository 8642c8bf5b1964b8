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

    // The printed table has a header, a rule, and 3 models x 3 cohorts.
    assert!(stdout.contains("model"), "{stdout}");
    for model in ["T1W_whole", "T2FS_whole", "fusion_whole"] {
        assert!(stdout.contains(model), "{model} missing from\n{stdout}");
    }
    let metrics = std::fs::read_to_string(out.join("study/metrics.csv"))?;
    assert_eq!(metrics.lines().count(), 1 + 9, "{metrics}");

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

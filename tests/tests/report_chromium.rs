//! End-to-end: the demo's `report.html` opened in headless Chromium.
//!
//! Chromium (Debian's `chromium` package, installed by `.ci/run`) loads the
//! page from disk. The page's self-check script measures every figure's
//! rendered size and writes the result into `<body data-figure-check>`,
//! which `--dump-dom` prints after the scripts ran. Console messages
//! appear on standard error as `CONSOLE` lines with `--enable-logging=stderr`.
//! The screenshot stays in `target/report-chromium/` for inspection.

use std::path::{Path, PathBuf};
use std::process::Command;

use radstudy_e2e::{workspace_binary, workspace_root};

/// Runs Chromium headless with `arguments` on `page`; returns stdout and
/// stderr.
fn chromium(arguments: &[String], page: &Path) -> anyhow::Result<(String, String)> {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            // Lets the load event and the self-check run before the DOM
            // is dumped (milliseconds of virtual time).
            "--virtual-time-budget=5000",
        ])
        .args(arguments)
        .arg(format!("file://{}", page.display()))
        .output()
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot start chromium ({error}); install it with `apt-get install -y chromium`"
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "chromium failed with {}\nstderr:\n{stderr}",
        output.status
    );
    Ok((stdout, stderr))
}

#[test]
fn report_renders_in_chromium() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("demo");
    let output = Command::new(workspace_binary("radstudy")?)
        .args(["demo", "--no-progress", "--out"])
        .arg(&out)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page = out.join("study/report.html");
    assert!(
        stdout.contains(&format!("report: {}", page.display())),
        "the summary does not print the report path:\n{stdout}"
    );

    let html = std::fs::read_to_string(&page)?;
    let figures = html.matches("<figure ").count();
    // The demo has 3 cohorts: ROC, calibration, decision curve and SHAP
    // beeswarm per cohort, plus one SHAP bar chart.
    assert_eq!(figures, 13, "figures in report.html");
    for external in ["<link ", "src=\"http", "href=\"http", "@import"] {
        assert!(!html.contains(external), "report.html loads {external}");
    }

    let (dom, stderr) = chromium(&["--dump-dom".into()], &page)?;
    let expected = format!("data-figure-check=\"ok {figures}\"");
    assert!(
        dom.contains(&expected),
        "self-check did not report {figures} rendered figures: {:?}",
        dom.split("data-figure-check=")
            .nth(1)
            .map(|s| &s[..s.len().min(120)])
    );
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );

    let shots = workspace_root().join("target/report-chromium");
    std::fs::create_dir_all(&shots)?;
    let screenshot: PathBuf = shots.join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,6000".into(),
        ],
        &page,
    )?;
    let size = std::fs::metadata(&screenshot)?.len();
    assert!(
        size > 10_000,
        "screenshot {} has only {size} bytes",
        screenshot.display()
    );
    println!("screenshot: {}", screenshot.display());
    Ok(())
}

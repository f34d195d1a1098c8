//! report.html seen in a real browser: a run with unexpected and ledgered failures is rendered
//! by headless Chromium, and the page a person would see is checked from the DOM Chromium built
//! (the script ran without errors, the tables and the matrix are there with the run's numbers).
//!
//! Chromium is Debian's package (`apt-get install chromium`; `.ci/run` installs it). Without it
//! the test says so and passes, unless HARNESS_REQUIRE_CHROMIUM=1 (set by `.ci/run`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{conformance, report, text};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HARNESS_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

fn require_chromium() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var("HARNESS_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "HARNESS_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// Runs headless Chromium on `page` with `args` (bounded by coreutils' `timeout`); its stdout.
fn headless(chromium: &Path, page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of the table with `id` in a DOM dump.
fn rows(dom: &str, id: &str) -> usize {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id} in the page"));
    let end = start + dom[start..].find("</table>").unwrap();
    dom[start..end].matches("<tr").count()
}

#[test]
fn report_html_renders_in_chromium_with_its_tables_and_no_script_error() {
    let Some(chromium) = require_chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    // A ledger that expects the fault injector's wrong values in one form, so the page has both
    // unexpected failures and expected ones grouped under their reason.
    let (fault, ledger) = common::swapped_pads_half_known(dir.path(), "swapped pads <known>");
    let o = conformance(
        &out,
        &[
            "--cases",
            "40",
            "--seed",
            "3",
            "--converter",
            "identity",
            "--converter",
            &fault,
            "--max-bundles",
            "1",
            "--known-failures",
            ledger.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let json = report(&out);
    let failing = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] != "pass" && r.get("expected").is_none())
        .count();
    let expected = json["summary"]["expected"].as_u64().unwrap();
    assert!(failing > 0 && expected > 0, "the fixture needs both kinds");

    let page = out.join("report.html");
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(
        !source.contains("src=\"http") && !source.contains("href=\"http"),
        "the page fetches nothing"
    );
    let dom = headless(&chromium, &page, &["--dump-dom"]);
    assert!(
        dom.contains("data-script-errors=\"\"") && dom.contains("data-ready=\"yes\""),
        "the page's script did not run cleanly: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(dom.contains("<span class=\"status fail\" id=\"status\">failed</span>"));
    assert!(dom.contains(&format!("<b id=\"failing\">{failing}</b>")));
    // Header row plus one per verdict; two converter columns.
    assert_eq!(
        rows(&dom, "verdicts"),
        1 + harness::results::Verdict::ALL.len()
    );
    assert!(dom.contains("identity on tract"));
    // Header plus one row per coverage class the run saw.
    let classes = json["coverage"].as_object().unwrap().len();
    assert_eq!(rows(&dom, "matrix"), 1 + classes);
    assert!(dom.contains("style=\"background:hsl("), "coloured cells");
    assert_eq!(rows(&dom, "failures"), 1 + failing);
    assert!(dom.contains("--onnx-tests"), "repro commands");
    // The ledger's reason shown once, however many results it explains.
    assert_eq!(dom.matches("swapped pads &lt;known&gt;").count(), 1);

    // And a person would see it: a screenshot of the first screen is a real image.
    let shot = dir.path().join("shot.png");
    headless(
        &chromium,
        &page,
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    assert!(
        png.len() > 20_000,
        "a blank page compresses to almost nothing"
    );
}

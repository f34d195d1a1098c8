//! The results log: every result is appended to `results.jsonl` in the report directory as
//! soon as it is known, so that a run killed hard (SIGKILL from a CI time-out, the kernel's
//! out-of-memory killer, a reboot) keeps what it finished, and a later run continues from it
//! (`conformance --resume`) or the reports are rebuilt from it (`report --resume`).
//!
//! One JSON object per line:
//! - `{"results_log": 1, "options": …, "environment": …}` first: a resume checks the options.
//! - `{"unit": "gen:12", "result": …}`: one result of a unit (a generated case, by index, or
//!   a test-case directory, `dir:PATH`).
//! - `{"done": "gen:12"}`: every result of the unit is above it; a resume skips the unit.
//!   Results of a unit without its `done` line are run again.
//! - `{"alone": …}`: a result run again alone after the parallel part (a timeout, a dead
//!   worker), which replaces the unit's result of the same case and converter.
//! - `{"end": true}`: every case ran and every retry alone is logged.
//! - `{"bundled": …}`: a failure after its reduction and repro bundle (which can match a ledger
//!   entry its first result did not), written after `end`; it replaces the result of its case
//!   and converter when the reports are rebuilt from the log. A resumed run reduces its
//!   failures again and does not read these.
//!
//! Each line is one `write` on a file opened for appending (a unit's results and its `done`
//! line together are one), so a killed process leaves whole lines behind (they are in the page cache); a machine that goes down loses at most the lines
//! written since the last `fsync`, which follows the first line written once [`SYNC_EVERY`]
//! has passed since the one before (batches: a sync per case would cost more than the case),
//! and the `end` line. A torn last line is ignored when the log is read.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::results::{CaseResult, Environment};

/// The log's name in a report directory.
pub const FILE: &str = "results.jsonl";

/// The most time between a line written and its `fsync`.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Options that may differ between a run and the run that resumes it.
const MAY_CHANGE_ON_RESUME: [&str; 1] = ["budget"];

/// The unit of a generated case.
pub fn generated_unit(index: u64) -> String {
    format!("gen:{index}")
}

/// The unit of a test-case directory.
pub fn directory_unit(dir: &Path) -> String {
    format!("dir:{}", dir.display())
}

/// A results log being written.
pub struct Journal {
    out: Mutex<Writer>,
}

struct Writer {
    file: File,
    last_sync: Instant,
    /// The first write that failed: the log is incomplete from there on.
    failed: Option<String>,
}

impl Writer {
    fn line(&mut self, value: &Value, sync: bool) {
        self.lines(std::slice::from_ref(value), sync);
    }

    /// Writes `values` as lines in one write: a process killed while logging them leaves all
    /// of them or none. (A unit's results and its `done` line go together: had a kill fallen
    /// between them, the resumed run would log the unit's results again, and the reader, which
    /// gathers a unit's results until its `done`, would have them twice.)
    fn lines(&mut self, values: &[Value], sync: bool) {
        if self.failed.is_some() {
            return;
        }
        let mut text = String::new();
        for value in values {
            text.push_str(&value.to_string());
            text.push('\n');
        }
        let written = self.file.write_all(text.as_bytes()).and_then(|_| {
            if sync || self.last_sync.elapsed() >= SYNC_EVERY {
                self.last_sync = Instant::now();
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            self.failed = Some(e.to_string());
        }
    }
}

impl Journal {
    /// Starts a new log at `path`, replacing any, headed by the run's options and environment.
    pub fn create(path: &Path, options: &Value, environment: &Environment) -> Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
        }
        let file = File::create(path)
            .with_context(|| format!("{}: cannot create the results log", path.display()))?;
        let journal = Journal::writing(file);
        journal.write(
            &json!({"results_log": 1, "options": options, "environment": environment}),
            true,
        );
        match journal.error() {
            Some(e) => bail!("{}: cannot write the results log: {e}", path.display()),
            None => Ok(journal),
        }
    }

    /// Opens the log at `path` to continue it, after checking that it was written with the
    /// same `options` (but for [`MAY_CHANGE_ON_RESUME`]): what it holds, and the log.
    pub fn resume(path: &Path, options: &Value) -> Result<(Journal, Logged)> {
        let logged = read(path)?;
        let differing = differing_options(&logged.options, options);
        if !differing.is_empty() {
            bail!(
                "{}: written by a run with other options ({}); resume with the same options, or \
                 start a new run without --resume",
                path.display(),
                differing.join(", ")
            );
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the results log", path.display()))?;
        // A torn last line (the process died mid-write) goes: the next line starts whole.
        if logged.torn {
            file.set_len(logged.whole_lines)
                .with_context(|| format!("{}: cannot cut its torn last line", path.display()))?;
        } else if !ends_with_newline(&file) {
            // A whole last line without its newline: the next line must not join it.
            (&file).write_all(b"\n")?;
        }
        Ok((Journal::writing(file), logged))
    }

    fn writing(file: File) -> Journal {
        Journal {
            out: Mutex::new(Writer {
                file,
                last_sync: Instant::now(),
                failed: None,
            }),
        }
    }

    fn out(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, value: &Value, sync: bool) {
        self.out().line(value, sync);
    }

    /// Logs every result of `unit`, then that the unit is done.
    pub fn unit(&self, unit: &str, results: &[CaseResult]) {
        let mut lines: Vec<Value> = results
            .iter()
            .map(|r| json!({"unit": unit, "result": r}))
            .collect();
        lines.push(json!({ "done": unit }));
        self.out().lines(&lines, false);
    }

    /// Logs a result run again alone, which replaces the unit's result of its case and
    /// converter.
    pub fn alone(&self, r: &CaseResult) {
        self.write(&json!({ "alone": r }), false);
    }

    /// Logs that every case ran and every retry alone is logged.
    pub fn end(&self) {
        self.write(&json!({"end": true}), true);
    }

    /// Logs a failure as its reduction left it, which replaces the result of its case and
    /// converter in the rebuilt reports.
    pub fn bundled(&self, r: &CaseResult) {
        self.write(&json!({ "bundled": r }), false);
    }

    /// Why the log is incomplete, if a write failed.
    pub fn error(&self) -> Option<String> {
        self.out().failed.clone()
    }
}

/// What a results log holds.
#[derive(Debug, Default)]
pub struct Logged {
    /// The options of the run that wrote it.
    pub options: Value,
    /// Its environment.
    pub environment: Option<Environment>,
    /// Results of every unit that is done, by unit.
    pub units: HashMap<String, Vec<CaseResult>>,
    /// Units in the order they were done.
    pub order: Vec<String>,
    /// Results of units that are not done (the run stopped amid them).
    pub partial: Vec<CaseResult>,
    /// Results run again alone, in order.
    pub alone: Vec<CaseResult>,
    /// Failures as their reduction left them, in order.
    pub bundled: Vec<CaseResult>,
    /// Whether the run logged its end.
    pub ended: bool,
    /// Whether the last line was cut short.
    torn: bool,
    /// Bytes up to the end of the last whole line.
    whole_lines: u64,
}

impl Logged {
    /// Every result, done units first (test-case directories in the order they were done,
    /// then generated cases by index), then those of units not done; the results run again
    /// alone replace theirs, and the failures as their reduction left them replace those.
    pub fn results(&self) -> Vec<CaseResult> {
        let mut directories = Vec::new();
        let mut generated = BTreeMap::new();
        for unit in &self.order {
            match unit
                .strip_prefix("gen:")
                .and_then(|i| i.parse::<u64>().ok())
            {
                Some(index) => {
                    generated.insert(index, unit);
                }
                None => directories.push(unit),
            }
        }
        let mut results: Vec<CaseResult> = directories
            .into_iter()
            .chain(generated.into_values())
            .flat_map(|u| self.units[u].iter().cloned())
            .chain(self.partial.iter().cloned())
            .collect();
        replace_with_newer(&mut results, &self.alone);
        replace_with_newer(&mut results, &self.bundled);
        results
    }

    /// How many units are done.
    pub fn done(&self) -> usize {
        self.order.len()
    }
}

/// Replaces each result that has a newer one in `newer` (same case and converter).
pub fn replace_with_newer(results: &mut [CaseResult], newer: &[CaseResult]) {
    for a in newer {
        if let Some(r) = results
            .iter_mut()
            .find(|r| r.case == a.case && r.converter == a.converter)
        {
            *r = a.clone();
        }
    }
}

/// Reads the results log at `path`.
pub fn read(path: &Path) -> Result<Logged> {
    let file = File::open(path)
        .with_context(|| format!("{}: cannot read the results log", path.display()))?;
    let mut logged = Logged::default();
    let mut open: HashMap<String, Vec<CaseResult>> = HashMap::new();
    let mut lines = BufReader::new(file).split(b'\n').peekable();
    let mut number = 0;
    let mut offset = 0u64;
    while let Some(line) = lines.next() {
        number += 1;
        let line = line.with_context(|| format!("{}: cannot read", path.display()))?;
        let last = lines.peek().is_none();
        let start = offset;
        offset += line.len() as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            // The process died while writing the last line.
            Err(_) if last => {
                logged.torn = true;
                logged.whole_lines = start;
                break;
            }
            Err(e) => bail!("{}:{number}: not a results-log line: {e}", path.display()),
        };
        let at = || format!("{}:{number}", path.display());
        if number == 1 {
            if value["results_log"] != json!(1) {
                bail!("{}: not a results log (no header line)", at());
            }
            logged.options = value["options"].clone();
            logged.environment = serde_json::from_value(value["environment"].clone()).ok();
        } else if let Some(unit) = value["unit"].as_str() {
            let r: CaseResult = serde_json::from_value(value["result"].clone())
                .with_context(|| format!("{}: a result that does not read", at()))?;
            open.entry(unit.to_string()).or_default().push(r);
        } else if let Some(unit) = value["done"].as_str() {
            let results = open.remove(unit).unwrap_or_default();
            if logged.units.insert(unit.to_string(), results).is_none() {
                logged.order.push(unit.to_string());
            }
        } else if !value["alone"].is_null() {
            let r: CaseResult = serde_json::from_value(value["alone"].clone())
                .with_context(|| format!("{}: a result that does not read", at()))?;
            logged.alone.push(r);
        } else if !value["bundled"].is_null() {
            let r: CaseResult = serde_json::from_value(value["bundled"].clone())
                .with_context(|| format!("{}: a result that does not read", at()))?;
            logged.bundled.push(r);
        } else if value["end"] == json!(true) {
            logged.ended = true;
        } else {
            bail!("{}: not a results-log line", at());
        }
    }
    if number == 0 {
        bail!("{}: empty results log", path.display());
    }
    let mut partial: Vec<(String, Vec<CaseResult>)> = open.into_iter().collect();
    partial.sort_by(|a, b| a.0.cmp(&b.0));
    logged.partial = partial.into_iter().flat_map(|(_, r)| r).collect();
    Ok(logged)
}

/// Whether the file's last byte is a newline (an empty file counts as one).
fn ends_with_newline(file: &File) -> bool {
    use std::os::unix::fs::FileExt as _;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut last = [b'\n'];
    len == 0 || file.read_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
}

/// Top-level option names whose values differ, but for [`MAY_CHANGE_ON_RESUME`].
fn differing_options(logged: &Value, now: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        logged.as_object().unwrap_or(&empty),
        now.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !MAY_CHANGE_ON_RESUME.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Origin;

    fn result(index: u64, converter: &str) -> CaseResult {
        CaseResult::unjudged(
            &format!("s0-i{index}"),
            Origin::Generated {
                base: 0,
                index,
                quantized: false,
            },
            converter,
            "tract",
        )
    }

    fn environment() -> Environment {
        Environment::detect()
    }

    #[test]
    fn done_units_come_back_in_case_order_and_open_ones_as_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let options = json!({"seed": 3, "budget": null});
        let j = Journal::create(&path, &options, &environment()).unwrap();
        j.unit("gen:5", &[result(5, "a"), result(5, "b")]);
        j.unit("gen:2", &[result(2, "a"), result(2, "b")]);
        drop(j);
        // A unit cut off before its `done`, and a line torn mid-write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let line = json!({"unit": "gen:7", "result": result(7, "a")});
        writeln!(f, "{line}").unwrap();
        write!(f, "{{\"unit\": \"gen:7\", \"res").unwrap();
        drop(f);

        let (j, logged) = Journal::resume(&path, &json!({"seed": 3, "budget": 10})).unwrap();
        assert_eq!(logged.order, ["gen:5", "gen:2"]);
        let ids: Vec<(String, String)> = logged
            .results()
            .iter()
            .map(|r| (r.case.clone(), r.converter.clone()))
            .collect();
        let want = [
            ("s0-i2", "a"),
            ("s0-i2", "b"),
            ("s0-i5", "a"),
            ("s0-i5", "b"),
            ("s0-i7", "a"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(i, c)| (i.to_string(), c.to_string()))
            .collect();
        assert_eq!(ids, want);
        assert!(!logged.ended);

        // Appending after a torn line starts on a line of its own.
        let mut alone = result(5, "b");
        alone.message = Some("run alone".into());
        j.alone(&alone);
        j.end();
        // After the end: a failure as its reduction left it.
        let mut bundled = result(2, "a");
        bundled.repro = Some("failures/s0-i2-a".into());
        j.bundled(&bundled);
        drop(j);
        let logged = read(&path).unwrap();
        assert!(logged.ended);
        let again = logged.results();
        let r = again
            .iter()
            .find(|r| r.case == "s0-i5" && r.converter == "b")
            .unwrap();
        assert_eq!(r.message.as_deref(), Some("run alone"));
        let r = again
            .iter()
            .find(|r| r.case == "s0-i2" && r.converter == "a")
            .unwrap();
        assert_eq!(r.repro.as_deref(), Some("failures/s0-i2-a"));
        assert_eq!(again.len(), 5, "a bundled result replaces, never adds");
    }

    #[test]
    fn a_whole_last_line_without_its_newline_does_not_join_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let options = json!({"seed": 1});
        let j = Journal::create(&path, &options, &environment()).unwrap();
        j.unit("gen:0", &[result(0, "a")]);
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.trim_end()).unwrap();
        let (j, logged) = Journal::resume(&path, &options).unwrap();
        assert_eq!(logged.order, ["gen:0"]);
        j.unit("gen:1", &[result(1, "a")]);
        drop(j);
        assert_eq!(read(&path).unwrap().order, ["gen:0", "gen:1"]);
    }

    #[test]
    fn a_resume_with_other_options_is_refused_and_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        Journal::create(&path, &json!({"seed": 3, "cases": 10}), &environment()).unwrap();
        let e = Journal::resume(&path, &json!({"seed": 4, "cases": 10}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("other options (seed)"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_results_log_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for bytes in [
            &b""[..],
            b"{\"x\": 1}\n{}\n",
            b"not json\n{}\n",
            b"\xff\xfe\n\n",
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert!(read(&path).is_err(), "{bytes:?}");
        }
    }
}

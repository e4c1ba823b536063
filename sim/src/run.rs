//! Running a built harness on a batch of vectors and reading its results back.
//!
//! Each run gets its own directory `work_dir/run-<pid>-<n>/` (so concurrent calls
//! sharing a `work_dir` do not collide) holding `inputs.bin`, `outputs.bin`,
//! `stats.txt` and `harness.stderr`. It is deleted after a successful run and kept
//! after a failure so the inputs and logs can be inspected.
//!
//! This file turns the harness' raw report into an [`crate::Outcome`] or a [`SimError`];
//! it must not build anything and must not interpret the output *values* (checking
//! them against a reference is the caller's job).

use crate::error::SimError;
use crate::verilate::log_tail;
use crate::{words, Design, Options};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What the harness reported in `stats.txt`.
pub(crate) struct Report {
    pub outputs: Vec<u32>,
    pub latency_min: u32,
    pub latency_max: u32,
    pub cycles: u64,
}

fn fresh_run_dir(work_dir: &Path) -> Result<PathBuf, SimError> {
    let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = work_dir.join(format!("run-{}-{n}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(SimError::io(&dir))?;
    }
    fs::create_dir_all(&dir).map_err(SimError::io(&dir))?;
    Ok(dir)
}

fn write_words(path: &Path, data: &[u32]) -> Result<(), SimError> {
    let mut bytes = Vec::with_capacity(data.len() * 4);
    for w in data {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let mut f = fs::File::create(path).map_err(SimError::io(path))?;
    f.write_all(&bytes).map_err(SimError::io(path))?;
    Ok(())
}

/// Run `binary` on `inputs` (already validated to be `n * words(in_width)` long).
pub(crate) fn run_harness(
    binary: &Path,
    design: &Design,
    inputs: &[u32],
    opts: &Options,
) -> Result<Report, SimError> {
    let iw = words(design.in_width);
    let ow = words(design.out_width);
    let n = (inputs.len() / iw) as u64;

    let dir = fresh_run_dir(&opts.work_dir)?;
    let in_path = dir.join("inputs.bin");
    let out_path = dir.join("outputs.bin");
    let stats_path = dir.join("stats.txt");
    let err_path = dir.join("harness.stderr");
    write_words(&in_path, inputs)?;

    // Only draw a bar for a human watching; logs in CI stay clean.
    let show = opts.progress && std::io::stderr().is_terminal();
    let bar = if show {
        let b = indicatif::ProgressBar::new(n);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "simulating {bar:40} {human_pos}/{human_len} vectors, eta {eta}",
        ) {
            b.set_style(style);
        }
        Some(b)
    } else {
        None
    };

    let harness_failed = |message: String, tail: String| SimError::HarnessFailed {
        message,
        dir: dir.clone(),
        tail,
    };

    let err_file = fs::File::create(&err_path).map_err(SimError::io(&err_path))?;
    let mut child = Command::new(binary)
        .arg(&in_path)
        .arg(&out_path)
        .arg(&stats_path)
        .arg(n.to_string())
        .arg(opts.bubble_every.to_string())
        .arg(if show { "1" } else { "0" })
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err_file)
        .spawn()
        .map_err(|e| {
            harness_failed(
                format!("cannot start {}: {e}", binary.display()),
                String::new(),
            )
        })?;

    // stdout carries only "progress <k>" lines; anything else is kept for errors.
    let mut other = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match line
                .strip_prefix("progress ")
                .and_then(|k| k.trim().parse::<u64>().ok())
            {
                Some(k) => {
                    if let Some(b) = &bar {
                        b.set_position(k);
                    }
                }
                None => other.push(line),
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| harness_failed(format!("waiting for harness: {e}"), String::new()))?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !status.success() {
        let mut tail = log_tail(&err_path, 30);
        if !other.is_empty() {
            tail.push('\n');
            tail.push_str(&other.join("\n"));
        }
        return Err(harness_failed(
            format!("harness exited with {status}"),
            tail,
        ));
    }

    let stats_text = fs::read_to_string(&stats_path).map_err(SimError::io(&stats_path))?;
    let stats: HashMap<&str, i64> = stats_text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect();
    if !stats_text.lines().any(|l| l == "end ok") {
        return Err(harness_failed(
            "stats.txt is incomplete".into(),
            stats_text.clone(),
        ));
    }
    let get = |k: &str| -> Result<i64, SimError> {
        stats
            .get(k)
            .copied()
            .ok_or_else(|| harness_failed(format!("stats.txt lacks `{k}`"), stats_text.clone()))
    };

    let n_in = get("inputs")? as u64;
    let n_out = get("outputs")? as u64;
    let spurious = get("spurious")? as u64;
    let reset_violation = get("reset_violation_cycle")?;
    if reset_violation >= 0 {
        return Err(SimError::ResetViolation {
            cycle: reset_violation as u64,
            reset_cycles: crate::harness::RESET_CYCLES,
        });
    }
    if n_in != n || n_out != n || spurious != 0 {
        let detail = if spurious != 0 {
            format!(
                "{spurious} out_valid cycles had no vector in flight, first at cycle {}; \
                 out_valid is stuck or duplicated",
                get("first_spurious_cycle")?
            )
        } else {
            format!(
                "{} results missing after draining {} idle cycles past the last input \
                 (declared latency {}); the true latency is far larger or the valid chain \
                 drops vectors{}",
                n.saturating_sub(n_out),
                get("drained")?,
                design.latency,
                if opts.bubble_every != 0 {
                    format!(" (bubble_every = {})", opts.bubble_every)
                } else {
                    String::new()
                }
            )
        };
        return Err(SimError::OutputCountMismatch {
            inputs: n,
            outputs: n_out + spurious,
            detail,
        });
    }

    let bytes = fs::read(&out_path).map_err(SimError::io(&out_path))?;
    if bytes.len() as u64 != n * ow as u64 * 4 {
        return Err(harness_failed(
            format!(
                "outputs.bin has {} bytes, expected {}",
                bytes.len(),
                n * ow as u64 * 4
            ),
            String::new(),
        ));
    }
    let outputs = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();

    let report = Report {
        outputs,
        latency_min: get("latency_min")?.clamp(0, u32::MAX as i64) as u32,
        latency_max: get("latency_max")?.clamp(0, u32::MAX as i64) as u32,
        cycles: get("cycles")? as u64,
    };
    // Success: the run directory held only transient copies.
    let _ = fs::remove_dir_all(&dir);
    Ok(report)
}

//! The command line: compile a model.json to Verilog (optionally co-simulating it), or `predict` with
//! the golden model. It parses arguments, calls the library, writes files only under the output folder
//! the user gave, and maps diagnostics to exit codes (2: the input is wrong; 3: our bug; 1: co-simulation
//! found a mismatch). It lives in the library so the end-to-end tests can run exactly this code as a
//! binary of their own (`tests/`), while `main.rs` is a one-line wrapper.

use crate::diag::{Diagnostic, Result};
use crate::{compile, cosim, frontend, golden, vectors, Options};
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `println!` that ignores a closed standard output (`fastml-compile ... | head` must not panic).
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "fastml-compile",
    version,
    about = "Compile a quantised neural network (model.json) into pipelined, bit-exact Verilog",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    compile: CompileArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compile a model (the default when no subcommand is given).
    Compile(CompileArgs),
    /// Run the bit-exact golden model on input vectors (one per line, real numbers).
    Predict(PredictArgs),
}

#[derive(Args)]
struct CompileArgs {
    /// The model.json to compile.
    #[arg(required = true)]
    model: Option<PathBuf>,
    /// Target part: xcvu9p, xcvu13p or xcu250 (a full part number such as xcvu9p-flga2577-2-e works too).
    #[arg(long, default_value = "xcvu9p")]
    target: String,
    /// Output folder; nothing is written outside it.
    #[arg(short = 'o', long, default_value = "fastml-out")]
    out: PathBuf,
    /// Clock period in ns.
    #[arg(long, default_value_t = 5.0)]
    clock_ns: f64,
    /// Co-simulate this many vectors (corner values first, then random) against the golden model.
    #[arg(long)]
    cosim: Option<usize>,
    /// Co-simulate the vectors in this file (real numbers, one vector per line) instead.
    #[arg(long)]
    cosim_input: Option<PathBuf>,
    /// Seed of the random vectors.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cache Verilator builds here (default: inside the output folder).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Run the IR verifier after every pass (always on in debug builds).
    #[arg(long)]
    verify: bool,
    /// Do not share adders between outputs (plain adder trees, for comparison).
    #[arg(long)]
    no_share: bool,
    /// Share adders even where it deepens the adder trees (fewer LUTs, possibly more stages).
    #[arg(long)]
    deep_share: bool,
    /// Deepest shared sub-sum, in adders (larger: more sharing, longer paths).
    #[arg(long, default_value_t = 4)]
    share_depth: u32,
    /// Binary adders only: no ternary adders, so the Verilog uses no vendor primitives (LUT6_2,
    /// CARRY8) and suits any synthesis tool or FPGA family.
    #[arg(long)]
    no_ternary: bool,
    /// Adder levels the ternary adders may add to a layer beyond its critical depth (0: never deeper;
    /// larger: fewer LUTs, longer paths, possibly more stages). Default: chosen per layer so the design
    /// needs no more pipeline stages than with binary adders.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=64))]
    ternary_slack: Option<u32>,
    /// Co-simulate the ternary adders as their LUT6_2/CARRY8 netlist (the exact primitives synthesis
    /// sees; slower to build) instead of their fast model.
    #[arg(long)]
    cosim_netlist: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct PredictArgs {
    /// The model.json.
    model: PathBuf,
    /// Input vectors: one per line, real numbers separated by whitespace.
    #[arg(long)]
    input: PathBuf,
    /// Write outputs here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Evaluate in f64 with every quantiser skipped (for comparison), instead of exactly.
    #[arg(long)]
    float: bool,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| {
        Diagnostic::error(format!("cannot write {}: {e}", path.display()))
            .help("check the output folder")
    })
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| {
        Diagnostic::error(format!("cannot create {}: {e}", path.display()))
            .help("check the output folder")
    })
}

fn run_compile(a: CompileArgs) -> Result<i32> {
    let model_path = a.model.expect("clap requires the model");
    let t0 = Instant::now();
    let model = frontend::load_model(&model_path)?;
    let opts = Options {
        target: a.target.clone(),
        clock_ns: a.clock_ns,
        verify: a.verify || cfg!(debug_assertions),
        cse: crate::passes::cmvm::CseOptions {
            enabled: !a.no_share,
            keep_depth: !a.deep_share,
            max_depth: a.share_depth,
            ternary: !a.no_ternary,
            ternary_slack: a.ternary_slack,
        },
    };
    let design = compile(&model, &opts).map_err(|d| match (&d.file, &d.path) {
        // Errors found after the front end point into the model by JSON path: name the file too.
        (None, Some(_)) => d.in_file(model_path.display().to_string()),
        _ => d,
    })?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rtl = a.out.join("rtl");
    mkdir(&rtl)?;
    for f in &design.verilog {
        let path = rtl.join(&f.file_name);
        if let Some(dir) = path.parent() {
            mkdir(dir)?;
        }
        write_file(&path, f.text.as_bytes())?;
    }
    let mut report = design.report.json();
    report["compile_ms"] = serde_json::json!(compile_ms);
    if !a.quiet {
        let _ = std::io::stdout().write_all(design.report.table().as_bytes());
        say!(
            "compiled in {:.1} ms; Verilog in {}",
            compile_ms,
            rtl.join(&design.verilog[0].file_name).display()
        );
    }
    let mut code = 0;
    if a.cosim.is_some() || a.cosim_input.is_some() {
        let types: Vec<_> = design.dfg.inputs.clone();
        let inputs = match &a.cosim_input {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    Diagnostic::error(format!("cannot read the vectors: {e}"))
                        .in_file(p.display().to_string())
                })?;
                let q = input_quantizers(&design.layers);
                vectors::read_real_vectors(&text, &p.display().to_string(), &q)?.1
            }
            None => vectors::generate(&types, a.cosim.unwrap_or(0), a.seed),
        };
        let work = a.out.join("cosim");
        mkdir(&work)?;
        let res = cosim::run(
            &design,
            &rtl,
            &inputs,
            &cosim::CosimOptions {
                work_dir: work.clone(),
                cache_dir: a.cache_dir.clone(),
                progress: !a.quiet && std::io::stderr().is_terminal(),
                bubble_every: 13,
                netlist: a.cosim_netlist,
            },
        )?;
        write_file(
            &work.join("results.json"),
            serde_json::to_string_pretty(&res.json())
                .unwrap_or_default()
                .as_bytes(),
        )?;
        report["cosim"] = res.json();
        if !a.quiet || !res.passed() {
            say!(
                "co-simulation: {} vectors, {} mismatches, measured latency {}..{} cycles (scheduled {}); {:.0} vectors/s{}",
                res.vectors,
                res.mismatches,
                res.latency_min,
                res.latency_max,
                res.scheduled_latency,
                res.vectors as f64 / res.sim_seconds.max(1e-9),
                if res.cached { " (cached build)" } else { "" }
            );
            for m in &res.first {
                say!(
                    "  mismatch at vector {}: input {:?} expected {:?} got {:?}",
                    m.index,
                    m.input,
                    m.expected,
                    m.got
                );
            }
        }
        if !res.passed() {
            eprintln!("error: the Verilog does not compute what the golden model computes; this is a bug in fastml-compile, please report it with the model.json");
            code = 1;
        }
    }
    write_file(
        &a.out.join("report.json"),
        serde_json::to_string_pretty(&report)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(code)
}

fn input_quantizers(g: &crate::ir::layer::LayerGraph) -> Vec<crate::fixed::Quantizer> {
    g.input()
        .and_then(|id| match &g.layer(id).op {
            crate::ir::layer::LayerOp::Input { q } => Some(q.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn run_predict(a: PredictArgs) -> Result<i32> {
    let model = frontend::load_model(&a.model)?;
    // Lowering checks that every intermediate fits the exact arithmetic before we evaluate.
    let cx = crate::context(&Options::default())?;
    let (layers, _) = crate::lower(&model, &cx).map_err(|d| match (&d.file, &d.path) {
        (None, Some(_)) => d.in_file(a.model.display().to_string()),
        _ => d,
    })?;
    let file = a.input.display().to_string();
    let text = std::fs::read_to_string(&a.input)
        .map_err(|e| Diagnostic::error(format!("cannot read the inputs: {e}")).in_file(&file))?;
    let (reals, mants) = vectors::read_real_vectors(&text, &file, &input_quantizers(&layers))?;
    let mut out = String::new();
    for (r, m) in reals.iter().zip(&mants) {
        let line: Vec<String> = if a.float {
            golden::eval_float(&layers, r)
                .iter()
                .map(|v| format!("{v:e}"))
                .collect()
        } else {
            golden::eval_layers(&layers, m)
                .iter()
                .map(|c| crate::fixed::to_decimal(c.m, c.frac))
                .collect()
        };
        out.push_str(&line.join(" "));
        out.push('\n');
    }
    match &a.output {
        Some(p) => write_file(p, out.as_bytes())?,
        None => {
            let _ = std::io::stdout().write_all(out.as_bytes());
        }
    }
    Ok(0)
}

/// Run the command line with the process's arguments and exit.
pub fn main() {
    let cli = Cli::parse();
    let result = std::panic::catch_unwind(|| match cli.cmd {
        Some(Cmd::Predict(p)) => run_predict(p),
        Some(Cmd::Compile(c)) => run_compile(c),
        None => run_compile(cli.compile),
    });
    let code = match result {
        Ok(Ok(code)) => code,
        Ok(Err(d)) => {
            eprint!("{d}");
            d.exit_code()
        }
        Err(_) => {
            eprintln!("internal compiler error: the compiler panicked (message above); this is a bug in fastml-compile, please report it with the model.json");
            3
        }
    };
    std::process::exit(code);
}

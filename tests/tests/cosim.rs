//! End-to-end co-simulation: the Verilog, run by Verilator, equals the golden model bit for bit and its
//! measured latency equals the scheduled one, for every shipped model, for random models at several
//! clock periods, and for the real jets; and a deliberately broken design is caught (so this test can
//! fail); and the ternary adder's primitive netlist, its fast simulation model and plain arithmetic agree
//! for every negation pattern at many widths. Verilator builds are cached by design hash in `target/fastml-sim-cache`; the million-vector
//! runs live in `make bench`.

use fastml_compile::{cosim, frontend, Options};
use fastml_tests::{repo, run, shipped_models, sim_cache};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fastml-compile-e2e");

fn cosim_cli(model: &Path, vectors: &str, extra: &[&str]) -> serde_json::Value {
    fastml_tests::cosim_cli(BIN, model, vectors, extra)
}

#[test]
fn handwritten_models_are_bit_exact() {
    for m in shipped_models() {
        if m.to_string_lossy().contains("handwritten") {
            for clock in ["5", "1"] {
                let res = cosim_cli(&m, "20000", &["--clock-ns", clock]);
                assert_eq!(res["vectors"], 20000);
            }
        }
    }
}

#[test]
fn random_models_are_bit_exact() {
    let dir = tempfile::tempdir().expect("temp");
    for seed in 100..106u64 {
        let model = dir.path().join(format!("random_{seed}.json"));
        std::fs::write(&model, fastml_compile::testgen::random_model(seed)).expect("write");
        let clock = if seed % 2 == 0 { "1" } else { "5" };
        // Two of them through the ternary adders' primitive netlist rather than its fast model.
        let mut extra = vec!["--clock-ns", clock];
        if seed < 102 {
            extra.push("--cosim-netlist");
        }
        cosim_cli(&model, "5000", &extra);
    }
}

#[test]
fn random_v2_models_are_bit_exact() {
    // Tensor models (shared Dense, tables, lookup layers, Add, wiring, pooling) at 1 and 5 ns.
    let dir = tempfile::tempdir().expect("temp");
    for seed in 300..306u64 {
        let model = dir.path().join(format!("random_v2_{seed}.json"));
        std::fs::write(&model, fastml_compile::testgen::random_model_v2(seed)).expect("write");
        let clock = if seed % 2 == 0 { "1" } else { "5" };
        // Two through the primitive netlist (LUT6_2 pairs of ROM columns, ternary adders).
        let mut extra = vec!["--clock-ns", clock];
        if seed < 302 {
            extra.push("--cosim-netlist");
        }
        cosim_cli(&model, "5000", &extra);
    }
}

#[test]
fn jet_tagger_is_bit_exact_on_random_corner_and_real_vectors() {
    let m = repo().join("models/qkeras_3layer/model.json");
    let res = cosim_cli(&m, "30000", &[]);
    assert!(res["scheduled_latency"].as_u64().expect("latency") >= 2);
    let jets = repo().join("tests/data/reference/data_X_inputs.dat");
    let res = cosim_cli(&m, jets.to_str().expect("utf-8"), &[]);
    assert_eq!(res["vectors"], 8);
}

#[test]
fn a_broken_design_is_caught() {
    // Compile, then change one adder into a subtractor in the Verilog: co-simulation must notice.
    let model =
        frontend::load_model(&repo().join("models/handwritten/rounding.json")).expect("model");
    let design = fastml_compile::compile(&model, &Options::default()).expect("compiles");
    let dir = tempfile::tempdir().expect("temp");
    let rtl = dir.path().join("rtl");
    std::fs::create_dir_all(&rtl).expect("mkdir");
    let top = format!("{}.v", design.dfg.top.clone().expect("named"));
    for f in &design.verilog {
        let mut text = f.text.clone();
        if f.file_name == top {
            let at = text
                .find(") + ")
                .or_else(|| text.find(" + "))
                .expect("an adder");
            text.replace_range(at..at + 4, &text[at..at + 4].replace('+', "-"));
        }
        fastml_compile::emit::VerilogFile { text, ..f.clone() }
            .write_under(&rtl)
            .expect("write");
    }
    let inputs = fastml_compile::vectors::generate(&design.dfg.inputs, 2000, 3);
    let res = cosim::run(
        &design,
        &rtl,
        &inputs,
        &cosim::CosimOptions {
            work_dir: dir.path().join("cosim"),
            cache_dir: Some(sim_cache()),
            progress: false,
            bubble_every: 5,
            netlist: false,
        },
    )
    .expect("simulates");
    assert!(res.mismatches > 0, "the mutation went unnoticed");
    assert!(!res.first.is_empty());
    assert!(!res.passed());
}

/// `rtl-lib/fastml_add3.v` (LUT6_2 + CARRY8, simulated with the models in `rtl-lib/sim/`) and its fast
/// model `rtl-lib/sim/fastml_add3_model.v` both compute `±a ± b ± c mod 2^W` for each of the seven
/// negation patterns the compiler emits, with the compiler's own INIT, Y0 and CI, at widths that cover
/// a partial, a full and several chained CARRY8s.
#[test]
fn ternary_adder_netlist_and_model_equal_arithmetic() {
    let widths = [1u32, 2, 3, 5, 8, 9, 16, 17, 30];
    let mut tb = String::from("module tb;\n  reg [31:0] a, b, c;\n  integer k, errs;\n");
    let mut checks = String::new();
    let mut n = 0;
    for w in widths {
        for negs in 0..7u32 {
            let neg = [negs & 1 != 0, negs & 2 != 0, negs & 4 != 0];
            let count = neg.iter().filter(|&&x| x).count();
            let init = fastml_compile::emit::add3_init(neg);
            let sign = |x: bool| if x { "-" } else { "+" };
            tb += &format!(
                "  wire [{m}:0] s{n};\n  fastml_add3 #(.W({w}), .INIT(64'h{init:016x}), .Y0(1'b{y0}), .CI(1'b{ci})) u{n} \
                 (.a(a[{m}:0]), .b(b[{m}:0]), .c(c[{m}:0]), .s(s{n}));\n  \
                 wire [{m}:0] r{n} = {w}'d0 {sa} a[{m}:0] {sb} b[{m}:0] {sc} c[{m}:0];\n",
                m = w - 1,
                y0 = (count == 2) as u8,
                ci = (count >= 1) as u8,
                sa = sign(neg[0]),
                sb = sign(neg[1]),
                sc = sign(neg[2]),
            );
            checks += &format!(
                "    if (s{n} !== r{n}) begin errs = errs + 1; \
                 if (errs < 4) $display(\"W={w} negs={negs} a=%h b=%h c=%h s=%h want %h\", a, b, c, s{n}, r{n}); end\n"
            );
            n += 1;
        }
    }
    tb += "  initial begin\n    errs = 0;\n    for (k = 0; k < 20000; k = k + 1) begin\n";
    tb += "      a = $random; b = $random; c = $random;\n      if (k < 8) begin a = {32{k[0]}}; b = {32{k[1]}}; c = {32{k[2]}}; end\n      #1;\n";
    tb += &checks;
    tb += "    end\n    $display(\"errors %0d\", errs);\n    $finish;\n  end\nendmodule\n";
    let lib = repo().join("rtl-lib");
    for (what, files) in [
        (
            "netlist",
            vec![
                lib.join("fastml_add3.v"),
                lib.join("sim/LUT6_2.v"),
                lib.join("sim/CARRY8.v"),
            ],
        ),
        ("model", vec![lib.join("sim/fastml_add3_model.v")]),
    ] {
        let dir = tempfile::tempdir().expect("temp");
        std::fs::write(dir.path().join("tb.v"), &tb).expect("write");
        let mut args: Vec<String> = [
            "--binary",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "-fno-dfg-peephole",
            "--top-module",
            "tb",
            "-o",
            "tbx",
            "tb.v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let r = run("verilator", &args, dir.path());
        assert_eq!(r.code, 0, "{what}: verilator: {}{}", r.stdout, r.stderr);
        let r = run(
            dir.path().join("obj_dir/tbx").to_str().expect("utf-8"),
            &[],
            dir.path(),
        );
        assert!(
            r.stdout.contains("errors 0"),
            "{what} differs from arithmetic:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
}

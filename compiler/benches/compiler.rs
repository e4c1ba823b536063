//! Benchmarks (divan): compile time of the shipped jet tagger (model.json text → Verilog) and the golden
//! model's throughput, one vector at a time and in parallel batches. Run with `make bench`.

use fastml_compile::golden::{eval_layers, Program};
use fastml_compile::{compile, frontend, vectors, Options};

fn main() {
    divan::main();
}

fn jet_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/qkeras_3layer/model.json"
    ))
    .expect("shipped model")
}

/// model.json text → validated model → passes → schedule → Verilog text (no file I/O).
#[divan::bench(sample_count = 30)]
fn compile_jet_tagger(b: divan::Bencher) {
    let text = jet_text();
    let opts = Options {
        verify: false,
        ..Default::default()
    };
    b.bench(|| {
        let model = frontend::parse_model(&text, "model.json").expect("valid");
        compile(&model, &opts).expect("compiles")
    });
}

/// One inference of the compiled (hardware) golden model.
#[divan::bench]
fn golden_one_vector(b: divan::Bencher) {
    let model = frontend::parse_model(&jet_text(), "model.json").expect("valid");
    let design = compile(&model, &Options::default()).expect("compiles");
    let p = Program::new(&design.dfg);
    let xs = vectors::generate(&design.dfg.inputs, 1024, 1);
    let mut k = 0;
    b.bench_local(|| {
        k = (k + 1) % xs.len();
        p.eval(&xs[k])
    });
}

/// 100,000 inferences in parallel (rayon over all cores).
#[divan::bench(sample_count = 5)]
fn golden_batch_100k(b: divan::Bencher) {
    let model = frontend::parse_model(&jet_text(), "model.json").expect("valid");
    let design = compile(&model, &Options::default()).expect("compiles");
    let p = Program::new(&design.dfg);
    let xs = vectors::generate(&design.dfg.inputs, 100_000, 1);
    b.counter(divan::counter::ItemsCount::new(xs.len()))
        .bench(|| p.eval_batch(&xs));
}

/// One inference of the layer-level (specification) evaluator, for comparison.
#[divan::bench]
fn spec_one_vector(b: divan::Bencher) {
    let model = frontend::parse_model(&jet_text(), "model.json").expect("valid");
    let xs = vectors::generate(
        &fastml_compile::compile(&model, &Options::default())
            .expect("c")
            .dfg
            .inputs,
        64,
        1,
    );
    let mut k = 0;
    b.bench_local(|| {
        k = (k + 1) % xs.len();
        eval_layers(&model, &xs[k])
    });
}

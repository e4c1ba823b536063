//! Manual smoke run: `cargo run -p fastml-sim --example simone -- TOP FILE IN_W OUT_W LAT N WORKDIR`.
//! Streams N pseudo-random vectors and prints the outcome's statistics. Used to
//! measure build and simulation speed on real designs; not part of the test suite.
use fastml_sim::{simulate, words, Design, Options};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        eprintln!("usage: simone TOP FILE IN_W OUT_W LAT N WORKDIR");
        std::process::exit(2);
    }
    let design = Design {
        top: a[1].clone(),
        sources: vec![a[2].clone().into()],
        in_width: a[3].parse().unwrap(),
        out_width: a[4].parse().unwrap(),
        latency: a[5].parse().unwrap(),
    };
    let n: usize = a[6].parse().unwrap();
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let inputs: Vec<u32> = (0..n * words(design.in_width))
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u32
        })
        .collect();
    let mut opts = Options::new(&a[7]);
    opts.progress = true;
    match simulate(&design, &inputs, &opts) {
        Ok(o) => println!(
            "ok: cached={} build={:.2}s sim={:.2}s cycles={} latency={}..{} ({:.0} vectors/s)",
            o.cached,
            o.build_seconds,
            o.sim_seconds,
            o.cycles,
            o.latency_min,
            o.latency_max,
            n as f64 / o.sim_seconds
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

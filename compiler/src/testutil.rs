//! Helpers for the unit tests: parse a model from text, a default context, and golden-model equality
//! checks over random and corner vectors.

use crate::golden::{eval_layers, Program};
use crate::ir::dfg::Dfg;
use crate::ir::layer::{LayerGraph, LayerOp};
use crate::passes::PassContext;

pub fn parse(text: &str) -> LayerGraph {
    crate::frontend::parse_model(text, "test.json").unwrap_or_else(|e| panic!("{e}"))
}

pub fn cx() -> PassContext {
    PassContext {
        part: crate::target::find_part("xcvu9p").expect("known part"),
        clock_ns: 5.0,
        verify: true,
        cse: Default::default(),
    }
}

pub fn input_types(g: &LayerGraph) -> Vec<crate::fixed::FixedType> {
    let id = g.input().expect("an input");
    let LayerOp::Input { q } = &g.layer(id).op else {
        unreachable!("input() returns the Input")
    };
    q.iter().map(|q| q.ty).collect()
}

/// Two layer graphs compute the same exact outputs.
pub fn assert_layers_equal(a: &LayerGraph, b: &LayerGraph, n: usize) {
    for x in crate::vectors::generate(&input_types(a), n, 7) {
        let (ya, yb) = (eval_layers(a, &x), eval_layers(b, &x));
        let va: Vec<_> = ya.iter().map(|c| c.normalized()).collect();
        let vb: Vec<_> = yb.iter().map(|c| c.normalized()).collect();
        assert_eq!(va, vb, "input {x:?}");
    }
}

/// A dataflow graph computes exactly what a layer graph computes.
pub fn assert_dfg_matches(layers: &LayerGraph, dfg: &Dfg, n: usize) {
    let p = Program::new(dfg);
    for x in crate::vectors::generate(&input_types(layers), n, 11) {
        let want: Vec<_> = eval_layers(layers, &x)
            .iter()
            .map(|c| c.normalized())
            .collect();
        let got: Vec<_> = p
            .eval(&x)
            .iter()
            .zip(&p.output_fracs)
            .map(|(&m, &frac)| crate::ir::layer::Const { m, frac }.normalized())
            .collect();
        assert_eq!(got, want, "input {x:?}");
    }
}

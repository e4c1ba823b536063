//! `legalize-names`: the one place where text from a model.json becomes a Verilog identifier or a file
//! name. Every node gets `<layer>__<kind><k>_s<stage>`; the module gets the model's name. Illegal
//! characters become `_`, runs of `_` collapse (so no legalised layer name contains `__`, and node
//! names of different layers can never collide), a leading digit gets a prefix, Verilog and
//! SystemVerilog keywords get a suffix, absurd lengths are cut and tagged with a hash of the original,
//! and collisions between layers are numbered. A layer named `a; endmodule` or `../../x` therefore
//! yields a harmless identifier and can never reach a path outside the output folder.

use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::ir::dfg::{Dfg, Op};
use std::collections::{BTreeMap, HashSet};

pub struct LegalizeNames;

/// Names the emitter itself uses at the top level; no legalised name may equal them.
pub const RESERVED: &[&str] = &[
    "clk",
    "rst",
    "in_valid",
    "in_data",
    "out_valid",
    "out_data",
    "valid_pipe",
    "valid_s",
    "fastml_valid_pipe",
    // The ternary adder's library module and the primitives it instantiates (a top module of the
    // same name would overwrite its file or replace the primitive).
    "fastml_add3",
    "fastml_lut2",
    "LUT6_2",
    "CARRY8",
];

/// Longest identifier we produce for a layer or module (Verilog allows 1024; tools and humans less).
const MAX_LEN: usize = 40;

/// Verilog-2005 and SystemVerilog-2017 keywords (IEEE 1364 Annex B, IEEE 1800 Annex B).
const KEYWORDS: &[&str] = &[
    "accept_on",
    "alias",
    "always",
    "always_comb",
    "always_ff",
    "always_latch",
    "and",
    "assert",
    "assign",
    "assume",
    "automatic",
    "before",
    "begin",
    "bind",
    "bins",
    "binsof",
    "bit",
    "break",
    "buf",
    "bufif0",
    "bufif1",
    "byte",
    "case",
    "casex",
    "casez",
    "cell",
    "chandle",
    "checker",
    "class",
    "clocking",
    "cmos",
    "config",
    "const",
    "constraint",
    "context",
    "continue",
    "cover",
    "covergroup",
    "coverpoint",
    "cross",
    "deassign",
    "default",
    "defparam",
    "design",
    "disable",
    "dist",
    "do",
    "edge",
    "else",
    "end",
    "endcase",
    "endchecker",
    "endclass",
    "endclocking",
    "endconfig",
    "endfunction",
    "endgenerate",
    "endgroup",
    "endinterface",
    "endmodule",
    "endpackage",
    "endprimitive",
    "endprogram",
    "endproperty",
    "endspecify",
    "endsequence",
    "endtable",
    "endtask",
    "enum",
    "event",
    "eventually",
    "expect",
    "export",
    "extends",
    "extern",
    "final",
    "first_match",
    "for",
    "force",
    "foreach",
    "forever",
    "fork",
    "forkjoin",
    "function",
    "generate",
    "genvar",
    "global",
    "highz0",
    "highz1",
    "if",
    "iff",
    "ifnone",
    "ignore_bins",
    "illegal_bins",
    "implements",
    "implies",
    "import",
    "incdir",
    "include",
    "initial",
    "inout",
    "input",
    "inside",
    "instance",
    "int",
    "integer",
    "interconnect",
    "interface",
    "intersect",
    "join",
    "join_any",
    "join_none",
    "large",
    "let",
    "liblist",
    "library",
    "local",
    "localparam",
    "logic",
    "longint",
    "macromodule",
    "matches",
    "medium",
    "modport",
    "module",
    "nand",
    "negedge",
    "nettype",
    "new",
    "nexttime",
    "nmos",
    "nor",
    "noshowcancelled",
    "not",
    "notif0",
    "notif1",
    "null",
    "or",
    "output",
    "package",
    "packed",
    "parameter",
    "pmos",
    "posedge",
    "primitive",
    "priority",
    "program",
    "property",
    "protected",
    "pull0",
    "pull1",
    "pulldown",
    "pullup",
    "pulsestyle_ondetect",
    "pulsestyle_onevent",
    "pure",
    "rand",
    "randc",
    "randcase",
    "randsequence",
    "rcmos",
    "real",
    "realtime",
    "ref",
    "reg",
    "reject_on",
    "release",
    "repeat",
    "restrict",
    "return",
    "rnmos",
    "rpmos",
    "rtran",
    "rtranif0",
    "rtranif1",
    "s_always",
    "s_eventually",
    "s_nexttime",
    "s_until",
    "s_until_with",
    "scalared",
    "sequence",
    "shortint",
    "shortreal",
    "showcancelled",
    "signed",
    "small",
    "soft",
    "solve",
    "specify",
    "specparam",
    "static",
    "string",
    "strong",
    "strong0",
    "strong1",
    "struct",
    "super",
    "supply0",
    "supply1",
    "sync_accept_on",
    "sync_reject_on",
    "table",
    "tagged",
    "task",
    "this",
    "throughout",
    "time",
    "timeprecision",
    "timeunit",
    "tran",
    "tranif0",
    "tranif1",
    "tri",
    "tri0",
    "tri1",
    "triand",
    "trior",
    "trireg",
    "type",
    "typedef",
    "union",
    "unique",
    "unique0",
    "unsigned",
    "until",
    "until_with",
    "untyped",
    "use",
    "uwire",
    "var",
    "vectored",
    "virtual",
    "void",
    "wait",
    "wait_order",
    "wand",
    "weak",
    "weak0",
    "weak1",
    "while",
    "wildcard",
    "wire",
    "with",
    "within",
    "wor",
    "xnor",
    "xor",
];

/// FNV-1a, for a short stable tag of a cut name (no dependency for 6 lines).
fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// A legal identifier for any string: `[A-Za-z][A-Za-z0-9_]*`, no `__`, no keyword, at most
/// `MAX_LEN` characters, not ending in `_`.
pub fn legalize(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && (s.is_empty() || s.ends_with('_')) {
            continue;
        }
        s.push(c);
    }
    while s.ends_with('_') {
        s.pop();
    }
    if s.is_empty() {
        s.push('n');
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'n');
    }
    if s.len() > MAX_LEN {
        s.truncate(MAX_LEN - 9);
        while s.ends_with('_') {
            s.pop();
        }
        s = format!("{s}_{:08x}", fnv(raw));
    }
    if KEYWORDS.contains(&s.as_str()) || RESERVED.contains(&s.as_str()) || s.starts_with('\\') {
        s.push_str("_n");
    }
    s
}

impl DfgPass for LegalizeNames {
    fn name(&self) -> &'static str {
        "legalize-names"
    }
    fn doc(&self) -> &'static str {
        "give every node and the module a legal, unique Verilog name derived from the model's names"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        // Layer prefixes: legal and unique (numbered in layer order on collision).
        let mut used: HashSet<String> = HashSet::new();
        let mut prefixes = Vec::with_capacity(g.layers.len());
        for l in &g.layers {
            let base = legalize(&l.name);
            let mut name = base.clone();
            let mut k = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            prefixes.push(name);
        }
        let mut counters: BTreeMap<(u32, &'static str), u32> = BTreeMap::new();
        for v in g.topo() {
            let n = g.node(v);
            let kind = n.op.kind();
            let c = counters.entry((n.layer.0, kind)).or_insert(0);
            let name = match n.op {
                Op::Input { port } => format!("{}__in{port}", prefixes[n.layer.0 as usize]),
                Op::Output { port, .. } => format!("{}__out{port}", prefixes[n.layer.0 as usize]),
                // A kind ending in a digit (`add3`) takes a separator, so `add3` number 3 and `add`
                // number 33 stay apart.
                _ => format!(
                    "{}__{kind}{}{c}_s{}",
                    prefixes[n.layer.0 as usize],
                    if kind.ends_with(|ch: char| ch.is_ascii_digit()) {
                        "_"
                    } else {
                        ""
                    },
                    n.stage.unwrap_or(0)
                ),
            };
            *c += 1;
            g.node_mut(v).name = Some(name);
        }
        g.top = Some(legalize(&g.model_name));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_harmless() {
        assert_eq!(legalize("a; endmodule"), "a_endmodule");
        assert_eq!(legalize("../../x"), "x");
        assert_eq!(legalize("module"), "module_n");
        // The library modules and primitives the emitter instantiates keep their names.
        assert_eq!(legalize("fastml_add3"), "fastml_add3_n");
        assert_eq!(legalize("CARRY8"), "CARRY8_n");
        assert_eq!(legalize("9lives"), "n9lives");
        assert_eq!(legalize(""), "n");
        assert_eq!(legalize("fc1__relu"), "fc1_relu");
        assert_eq!(legalize("clk"), "clk_n");
        assert_eq!(legalize("ünïcødé"), "n_c_d");
        let long = "x".repeat(5000);
        let l = legalize(&long);
        assert!(l.len() <= MAX_LEN, "{l}");
        assert_ne!(
            legalize(&"x".repeat(5001)),
            l,
            "cut names keep a hash of the original"
        );
    }

    #[test]
    fn legal_names_are_identifiers() {
        for raw in [
            "a b",
            "\\escaped ",
            "$x",
            "`define",
            "/* c */",
            "a\nb",
            "_",
            "__a__",
        ] {
            let l = legalize(raw);
            assert!(
                l.chars().next().unwrap().is_ascii_alphabetic(),
                "{raw:?} -> {l}"
            );
            assert!(
                l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{raw:?} -> {l}"
            );
            assert!(!l.contains("__"), "{raw:?} -> {l}");
        }
    }
}

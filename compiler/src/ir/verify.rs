//! The IR verifier. It runs after every pass in debug builds and tests (see `passes::run_*`), and its
//! message is wrapped in a "bug" diagnostic naming the pass that ran last. It checks the invariants
//! `docs/ARCHITECTURE.md` promises; it never repairs anything.

use crate::fixed::MAX_WIDTH;
use crate::ir::dfg::{op_interval, Dfg, Op};
use crate::ir::layer::{layer_shape, LayerGraph, LayerOp, LookupTable};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::HashSet;

/// Layer IR invariants: edges mirror inputs, `order` is a topological order of all layers, lengths agree
/// with ops, exactly one Input, at least one Output, no Output feeds anything.
pub fn verify_layers(g: &LayerGraph) -> Result<(), String> {
    if g.order.len() != g.graph.node_count() {
        return Err(format!(
            "order lists {} layers, the graph has {}",
            g.order.len(),
            g.graph.node_count()
        ));
    }
    let mut seen = HashSet::new();
    let mut inputs = 0;
    let mut outputs = 0;
    for &id in &g.order {
        let l = g.layer(id);
        for (port, inp) in l.inputs.iter().enumerate() {
            if !seen.contains(inp) {
                return Err(format!(
                    "layer {:?} uses a layer that is not before it",
                    l.name
                ));
            }
            let ok = g
                .graph
                .edges_directed(id.0, Direction::Incoming)
                .any(|e| e.source() == inp.0 && *e.weight() as usize == port);
            if !ok {
                return Err(format!(
                    "layer {:?}: input {port} has no graph edge",
                    l.name
                ));
            }
            if matches!(g.layer(*inp).op, LayerOp::Output) {
                return Err(format!("layer {:?} reads an Output", l.name));
            }
        }
        if g.graph.edges_directed(id.0, Direction::Incoming).count() != l.inputs.len() {
            return Err(format!("layer {:?} has stray input edges", l.name));
        }
        match &l.op {
            LayerOp::Input { .. } => inputs += 1,
            LayerOp::Output => outputs += 1,
            LayerOp::Dense { .. }
            | LayerOp::BatchNorm { .. }
            | LayerOp::Relu
            | LayerOp::Quantize { .. }
            | LayerOp::Add
            | LayerOp::Mul
            | LayerOp::Reduce { .. }
            | LayerOp::Reshape
            | LayerOp::Transpose { .. }
            | LayerOp::Concat { .. }
            | LayerOp::Table { .. }
            | LayerOp::LookupDense { .. } => {}
        }
        // The one shape rule (`layer_shape`) must give the shape the layer carries.
        let ins: Vec<&[u32]> = l
            .inputs
            .iter()
            .map(|i| g.layer(*i).shape.as_slice())
            .collect();
        let declared =
            matches!(l.op, LayerOp::Input { .. } | LayerOp::Reshape).then_some(l.shape.as_slice());
        match layer_shape(&l.op, &ins, declared) {
            Ok(s) if s == l.shape => {}
            Ok(s) => {
                return Err(format!(
                    "layer {:?} ({}) has shape {:?}, its rule gives {s:?}",
                    l.name,
                    l.op.kind(),
                    l.shape
                ))
            }
            Err(m) => return Err(format!("layer {:?} ({}): {m}", l.name, l.op.kind())),
        }
        if let LayerOp::Table { table } = &l.op {
            check_table(&l.name, table)?;
        }
        if let LayerOp::LookupDense { tables, .. } = &l.op {
            for t in tables {
                check_table(&l.name, &t.table)?;
            }
        }
        seen.insert(id);
    }
    if inputs != 1 || outputs == 0 {
        return Err(format!("{inputs} Input and {outputs} Output layers"));
    }
    Ok(())
}

fn check_table(name: &str, t: &LookupTable) -> Result<(), String> {
    if t.entries.len() as u128 != 1u128 << t.domain.ty.width {
        return Err(format!(
            "layer {name:?}: a table over {} has {} entries",
            t.domain.ty,
            t.entries.len()
        ));
    }
    Ok(())
}

/// Dataflow IR invariants: operands precede users (id order is topological), edges mirror operands,
/// every interval is the exact one its rule gives and fits the exact arithmetic, input and output ports
/// are dense; stages are all set or none; once named, names are unique identifiers. The schedule's
/// timing is checked by `schedule::verify` (the pass manager's `passes::verify_dfg` runs both), so
/// this module depends on no pass and no option.
pub fn verify_dfg(g: &Dfg) -> Result<(), String> {
    let mut in_ports = vec![];
    let mut out_ports = vec![];
    let mut scheduled = 0;
    let mut named = HashSet::new();
    let mut regs = 0;
    for v in g.ids() {
        let n = g.node(v);
        let ops = n.op.operands();
        for (port, o) in ops.iter().enumerate() {
            if o.index() >= v.index() {
                return Err(format!("{v} uses {o}, which does not come before it"));
            }
            let ok = g
                .graph
                .edges_directed(v.0, Direction::Incoming)
                .any(|e| e.source() == o.0 && *e.weight() as usize == port);
            if !ok {
                return Err(format!("{v}: operand {port} ({o}) has no graph edge"));
            }
        }
        if g.graph.edges_directed(v.0, Direction::Incoming).count() != ops.len() {
            return Err(format!("{v} has stray input edges"));
        }
        let want = op_interval(&n.op, |o| g.node(o).iv, &g.inputs, &g.tables)
            .map_err(|e| format!("{v}: {e:?}"))?;
        if want != n.iv {
            return Err(format!(
                "{v} ({}) carries interval {:?}, its rule gives {:?}",
                n.op.kind(),
                n.iv,
                want
            ));
        }
        if n.iv.fixed_type().width > MAX_WIDTH {
            return Err(format!("{v} is {} bits wide", n.iv.fixed_type().width));
        }
        match n.op {
            Op::Input { port } => in_ports.push(port),
            Op::Output { port, .. } => out_ports.push(port),
            Op::Reg { .. } => regs += 1,
            Op::Add3 { a, b, c } if a.neg && b.neg && c.neg => {
                return Err(format!(
                    "{v}: a ternary adder with three negated operands (the emitter adds at most +2 \
                     for two's complements; negate the sum instead)"
                ));
            }
            Op::Table { t, .. } => {
                let Some(rom) = g.tables.get(t.0 as usize) else {
                    return Err(format!("{v} reads rom{}, which does not exist", t.0));
                };
                if rom.bits == 0 || rom.bits > 24 || rom.entries.len() != 1usize << rom.bits {
                    return Err(format!(
                        "{v}: rom{} has {} entries for {} address bits",
                        t.0,
                        rom.entries.len(),
                        rom.bits
                    ));
                }
            }
            Op::Const { .. }
            | Op::Add { .. }
            | Op::Add3 { .. }
            | Op::Scale { .. }
            | Op::Relu { .. }
            | Op::Quant { .. }
            | Op::Max { .. }
            | Op::Mul { .. } => {}
        }
        if n.stage.is_some() {
            scheduled += 1;
        }
        if let Some(name) = &n.name {
            if !named.insert(name.clone()) {
                return Err(format!("{v}: name {name:?} is used twice"));
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || !name.starts_with(|c: char| c.is_ascii_alphabetic())
            {
                return Err(format!("{v}: {name:?} is not a legal identifier"));
            }
        }
    }
    // LUT6_2 pairs (`pack-luts`): every user is a lookup on the pair's one address of at most 5 bits,
    // and its ROM column is exactly the LUT output it reads.
    for (k, p) in g.packed.iter().enumerate() {
        let mut addr = None;
        for &(v, bit, o6) in &p.users {
            if v.index() >= g.graph.node_count() {
                return Err(format!("LUT pair {k} names {v}, which does not exist"));
            }
            let Op::Table { a, t } = g.node(v).op else {
                return Err(format!("LUT pair {k} names {v}, which is not a lookup"));
            };
            let rom = g.table(t);
            let key = (a, rom.addr_frac, rom.bits);
            if *addr.get_or_insert(key) != key || rom.bits > 5 {
                return Err(format!("LUT pair {k}: {v} reads another address"));
            }
            let col = if o6 { &p.o6 } else { &p.o5 };
            let same = rom
                .entries
                .iter()
                .enumerate()
                .all(|(a, &e)| col.get(a).copied() == Some((e >> bit) & 1 == 1));
            if !same || p.o6.len() != 32 || p.o5.len() != 32 {
                return Err(format!("LUT pair {k}: bit {bit} of {v} is not its column"));
            }
        }
    }
    in_ports.sort();
    out_ports.sort();
    if in_ports != (0..g.inputs.len() as u32).collect::<Vec<_>>() {
        return Err(format!(
            "input ports {in_ports:?} do not match {} declared inputs",
            g.inputs.len()
        ));
    }
    if out_ports.is_empty() || out_ports != (0..out_ports.len() as u32).collect::<Vec<_>>() {
        return Err(format!("output ports {out_ports:?} are not 0..n"));
    }
    let count = g.graph.node_count();
    if scheduled != 0 && scheduled != count {
        return Err(format!("{scheduled} of {count} nodes are scheduled"));
    }
    if g.latency.is_some() && scheduled != count {
        return Err("the design has a latency but not every node has a stage".into());
    }
    if g.latency.is_some() != g.clock_ns.is_some() {
        return Err("a schedule records both its latency and its clock period".into());
    }
    if regs > 0 && !g.registered {
        return Err("registers exist before insert-registers ran".into());
    }
    if regs > 0 && g.latency.is_none() {
        return Err("registers exist but the design has no latency".into());
    }
    if g.top.is_some() && named.len() != count {
        return Err(format!("{} of {count} nodes are named", named.len()));
    }
    Ok(())
}

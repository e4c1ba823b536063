//! A small Verilog-2005 AST and its printer: the emitter builds this and never concatenates Verilog
//! text itself, so precedence, widths of constants and lint waivers are decided in one place.
//! The printer is deterministic (items print in the order they were pushed) and knows nothing of the IR.

use std::fmt::Write;

/// An expression. Every expression the emitter builds has an exact, known width.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A whole signal.
    Ref(String),
    /// `name[hi:lo]`.
    Slice(String, u32, u32),
    /// `name[i]`.
    Bit(String, u32),
    /// A sized constant `W'h...` of the low `width` bits of `bits`.
    Const {
        width: u32,
        bits: u128,
    },
    /// `{a, b, ...}`, most significant first.
    Concat(Vec<Expr>),
    /// `{n{e}}`.
    Repeat(u32, Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Mux(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Bitwise `~e`.
    Not(Box<Expr>),
    /// Bitwise `a & b`.
    And(Box<Expr>, Box<Expr>),
    /// `a * b` (both operands and the result of one width: the low bits of the product, which do not
    /// depend on signedness).
    Mul(Box<Expr>, Box<Expr>),
    /// `name[e]`: one bit of a signal (a ROM column) selected by a variable index.
    Index(String, Box<Expr>),
    /// `|e` (reduction OR).
    OrReduce(Box<Expr>),
    /// `&e` (reduction AND).
    AndReduce(Box<Expr>),
}

impl Expr {
    pub fn boxed(self) -> Box<Expr> {
        Box::new(self)
    }
}

/// A module port.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub output: bool,
    pub name: String,
    pub width: u32,
    /// Wrap the declaration in a Verilator `UNUSEDSIGNAL` waiver (an input some of whose bits no
    /// output depends on, e.g. after pruning).
    pub waive_unused: bool,
}

/// A module item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Comment(String),
    Blank,
    /// `wire`/`reg` declaration; `waive_unused` for signals some of whose bits are deliberately
    /// dropped (rounding, wrap-around, a ReLU's sign bit).
    Decl {
        reg: bool,
        name: String,
        width: u32,
        waive_unused: bool,
    },
    Assign {
        lhs: String,
        rhs: Expr,
    },
    /// `always @(posedge clk) begin lhs <= rhs; ... end`.
    AlwaysFf {
        clock: String,
        body: Vec<(String, Expr)>,
    },
    /// `localparam [width-1:0] name = width'h...;` with bit `k` = `bits[k]` (a ROM column: bit `k` is
    /// the output bit's value at address `k`).
    Localparam {
        name: String,
        bits: Vec<bool>,
    },
    Instance {
        module: String,
        name: String,
        params: Vec<(String, String)>,
        ports: Vec<(String, Expr)>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub name: String,
    pub header: Vec<String>,
    pub ports: Vec<Port>,
    pub items: Vec<Item>,
}

fn range(width: u32) -> String {
    format!("[{}:0]", width - 1)
}

fn print_expr(e: &Expr, out: &mut String) {
    match e {
        Expr::Ref(n) => out.push_str(n),
        Expr::Slice(n, hi, lo) => {
            let _ = write!(out, "{n}[{hi}:{lo}]");
        }
        Expr::Bit(n, i) => {
            let _ = write!(out, "{n}[{i}]");
        }
        Expr::Const { width, bits } => {
            let mask = if *width >= 128 {
                u128::MAX
            } else {
                (1u128 << width) - 1
            };
            let _ = write!(out, "{width}'h{:x}", bits & mask);
        }
        Expr::Concat(parts) => {
            out.push('{');
            for (k, p) in parts.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                print_expr(p, out);
            }
            out.push('}');
        }
        Expr::Repeat(n, e) => {
            let _ = write!(out, "{{{n}{{");
            print_expr(e, out);
            out.push_str("}}");
        }
        Expr::Index(n, i) => {
            let _ = write!(out, "{n}[");
            print_expr(i, out);
            out.push(']');
        }
        Expr::Add(a, b) | Expr::Sub(a, b) | Expr::And(a, b) | Expr::Mul(a, b) => {
            let op = match e {
                Expr::Add(..) => " + ",
                Expr::Sub(..) => " - ",
                Expr::Mul(..) => " * ",
                _ => " & ",
            };
            out.push('(');
            print_expr(a, out);
            out.push_str(op);
            print_expr(b, out);
            out.push(')');
        }
        Expr::Mux(c, a, b) => {
            out.push('(');
            print_expr(c, out);
            out.push_str(" ? ");
            print_expr(a, out);
            out.push_str(" : ");
            print_expr(b, out);
            out.push(')');
        }
        Expr::Not(a) | Expr::OrReduce(a) | Expr::AndReduce(a) => {
            out.push_str(match e {
                Expr::Not(_) => "~",
                Expr::OrReduce(_) => "|",
                _ => "&",
            });
            out.push('(');
            print_expr(a, out);
            out.push(')');
        }
    }
}

/// Print an expression, dropping the outermost parentheses.
pub fn expr_to_string(e: &Expr) -> String {
    let mut s = String::new();
    print_expr(e, &mut s);
    if s.starts_with('(')
        && s.ends_with(')')
        && matches!(
            e,
            Expr::Add(..) | Expr::Sub(..) | Expr::Mux(..) | Expr::And(..) | Expr::Mul(..)
        )
    {
        s = s[1..s.len() - 1].to_string();
    }
    s
}

const WAIVE_ON: &str = "/* verilator lint_off UNUSEDSIGNAL */";
const WAIVE_OFF: &str = "/* verilator lint_on UNUSEDSIGNAL */";

impl Module {
    /// The module's Verilog text.
    pub fn print(&self) -> String {
        let mut s = String::new();
        for h in &self.header {
            let _ = writeln!(s, "{}", format!("// {h}").trim_end());
        }
        let _ = writeln!(s, "`default_nettype none");
        let _ = writeln!(s, "module {} (", self.name);
        for (k, p) in self.ports.iter().enumerate() {
            let dir = if p.output { "output" } else { "input " };
            let w = if p.width > 1 {
                format!(" {}", range(p.width))
            } else {
                String::new()
            };
            let comma = if k + 1 < self.ports.len() { "," } else { "" };
            if p.waive_unused {
                let _ = writeln!(s, "    {WAIVE_ON}");
            }
            let _ = writeln!(s, "    {dir} wire{w} {}{comma}", p.name);
            if p.waive_unused {
                let _ = writeln!(s, "    {WAIVE_OFF}");
            }
        }
        let _ = writeln!(s, ");");
        for item in &self.items {
            match item {
                Item::Comment(c) => {
                    let _ = writeln!(s, "    // {c}");
                }
                Item::Blank => s.push('\n'),
                Item::Decl {
                    reg,
                    name,
                    width,
                    waive_unused,
                } => {
                    let kw = if *reg { "reg " } else { "wire" };
                    let line = format!("    {kw} {} {name};", range(*width));
                    if *waive_unused {
                        let _ = writeln!(s, "    {WAIVE_ON}\n{line}\n    {WAIVE_OFF}");
                    } else {
                        let _ = writeln!(s, "{line}");
                    }
                }
                Item::Localparam { name, bits } => {
                    let w = bits.len().max(1);
                    let mut hex = String::with_capacity(w.div_ceil(4));
                    for d in (0..w.div_ceil(4)).rev() {
                        let nib = (0..4).fold(0u32, |acc, b| {
                            acc | ((bits.get(d * 4 + b).copied().unwrap_or(false) as u32) << b)
                        });
                        hex.push(char::from_digit(nib, 16).unwrap_or('0'));
                    }
                    let _ = writeln!(s, "    localparam [{}:0] {name} = {w}'h{hex};", w - 1);
                }
                Item::Assign { lhs, rhs } => {
                    let _ = writeln!(s, "    assign {lhs} = {};", expr_to_string(rhs));
                }
                Item::AlwaysFf { clock, body } => {
                    let _ = writeln!(s, "    always @(posedge {clock}) begin");
                    for (l, r) in body {
                        let _ = writeln!(s, "        {l} <= {};", expr_to_string(r));
                    }
                    let _ = writeln!(s, "    end");
                }
                Item::Instance {
                    module,
                    name,
                    params,
                    ports,
                } => {
                    let p = if params.is_empty() {
                        String::new()
                    } else {
                        let ps: Vec<String> =
                            params.iter().map(|(k, v)| format!(".{k}({v})")).collect();
                        format!(" #({})", ps.join(", "))
                    };
                    let _ = writeln!(s, "    {module}{p} {name} (");
                    for (k, (port, sig)) in ports.iter().enumerate() {
                        let comma = if k + 1 < ports.len() { "," } else { "" };
                        let mut e = String::new();
                        print_expr(sig, &mut e);
                        let _ = writeln!(s, "        .{port}({e}){comma}");
                    }
                    let _ = writeln!(s, "    );");
                }
            }
        }
        let _ = writeln!(s, "endmodule");
        let _ = writeln!(s, "`default_nettype wire");
        s
    }
}

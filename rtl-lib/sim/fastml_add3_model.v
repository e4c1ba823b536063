// fastml_add3 (simulation model): the function of rtl-lib/fastml_add3.v as plain arithmetic, for fast
// simulation of designs with thousands of ternary adders (the primitive netlist builds and runs ~10x
// slower under Verilator). The operand negations are recovered from INIT by matching it against the
// compiler's formula (emit::add3_init, repeated below); any other INIT stops the simulation, so the model
// can only stand for a netlist whose INIT it understands. Co-simulation uses it by default and
// `--cosim-netlist` uses the primitive netlist (with LUT6_2.v and CARRY8.v from this folder) instead;
// the test suite checks netlist == model == `+-a +-b +-c` for every negation pattern and many widths.
// Must not be given to synthesis (it defines the same module as rtl/fastml_add3.v).
`default_nettype none
/* verilator lint_off DECLFILENAME */
module fastml_add3 #(
    parameter integer W = 8,
    parameter [63:0] INIT = 64'h69966996e8e8e8e8,
    parameter [0:0] Y0 = 1'b0,
    parameter [0:0] CI = 1'b0
) (
    input  wire [W-1:0] a,
    input  wire [W-1:0] b,
    input  wire [W-1:0] c,
    output wire [W-1:0] s
);
    // The LUT function for negations n[0] (a), n[1] (b), n[2] (c): O5 = maj, O6 = xor with I3.
    function [63:0] init_of(input [2:0] n);
        integer k;
        reg x, y, z, cy;
        begin
            init_of = 64'd0;
            for (k = 0; k < 32; k = k + 1) begin
                x = k[0] ^ n[0];
                y = k[1] ^ n[1];
                z = k[2] ^ n[2];
                cy = k[3];
                init_of[k] = (x & y) | (x & z) | (y & z);
                init_of[32+k] = x ^ y ^ z ^ cy;
            end
        end
    endfunction
    // {valid, negations} for INIT.
    function [3:0] negs_of(input [63:0] init);
        integer n;
        begin
            negs_of = 4'd0;
            for (n = 0; n < 7; n = n + 1) if (init_of(n[2:0]) == init) negs_of = {1'b1, n[2:0]};
        end
    endfunction
    localparam [3:0] NEGS = negs_of(INIT);
    initial begin
        if (!NEGS[3]) begin
            $display("fastml_add3 model: INIT %h is not a ternary adder function", INIT);
            $finish;
        end
    end
    wire [W-1:0] a1 = NEGS[0] ? ~a : a;
    wire [W-1:0] b1 = NEGS[1] ? ~b : b;
    wire [W-1:0] c1 = NEGS[2] ? ~c : c;
    assign s = a1 + b1 + c1 + {{(W - 1) {1'b0}}, CI} + {{(W - 1) {1'b0}}, Y0};
endmodule
/* verilator lint_on DECLFILENAME */
`default_nettype wire

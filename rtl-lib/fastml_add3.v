// fastml_add3: s = a' + b' + c' + CI + Y0 (mod 2^W) in one LUT6_2 per bit on the UltraScale+ carry
// chain, where x' is x or ~x as the LUT function (INIT) says. With x' = ~x for a negated operand and
// CI, Y0 adding its +1 (two at most), s = +-a +-b +-c exactly when the true sum fits W bits.
//
// Part of fastml-compile's hand-written RTL library (rtl-lib/). The compiler emits it for its ternary
// adders (Op::Add3) and computes INIT, Y0 and CI (emit::add3_init). Why primitives: a ternary adder
// needs one LUT per bit only if the carry-save bit of position i is made by the LUT of position i-1
// (its O5 output) and fed both to the LUT of position i and to the chain's DI input; synthesis tools do
// not reliably find this structure in `a + b + c` (Yosys maps it to two LUTs per bit), so it is built
// from the primitives, as FloPoCo and Vivado's own ternary adders do.
//
// Per position i: I0..I2 = a[i], b[i], c[i]; I3 = y[i], the carry-save bit from below (y[0] = Y0);
// I4 = 0; I5 = 1. O6 = a'^b'^c'^y[i] is the chain's select S[i]; O5 = maj(a',b',c') = y[i+1]. The chain
// adds the vectors X = a'^b'^c' and Y = y: S = X ^ Y, DI = Y (when S is 0, X and Y agree).
// Must not: hold state, or depend on anything but the three operand vectors and the parameters.
// Simulation: rtl-lib/sim/ has behavioural LUT6_2 and CARRY8 for simulators without the unisim library.
`default_nettype none
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
    localparam integer N = (W + 7) / 8;
    wire [8*N-1:0] p;
    /* verilator lint_off UNUSEDSIGNAL */
    // The top carry-save bit, the carry outs and the sum bits above W are not needed.
    wire [8*N:0] y /* verilator split_var */;
    wire [8*N-1:0] co;
    wire [8*N-1:0] o;
    // The carry into each CARRY8: CI, then the previous block's top carry out.
    wire [N:0] ci;
    /* verilator lint_on UNUSEDSIGNAL */
    assign y[0] = Y0;
    assign ci[0] = CI;
    genvar i;
    generate
        for (i = 0; i < 8 * N; i = i + 1) begin : g_bit
            if (i < W) begin : g_lut
                LUT6_2 #(
                    .INIT(INIT)
                ) u_lut (
                    .O6(p[i]),
                    .O5(y[i+1]),
                    .I0(a[i]),
                    .I1(b[i]),
                    .I2(c[i]),
                    .I3(y[i]),
                    .I4(1'b0),
                    .I5(1'b1)
                );
            end else begin : g_pad
                assign p[i] = 1'b0;
                assign y[i+1] = 1'b0;
            end
        end
        for (i = 0; i < N; i = i + 1) begin : g_carry
            CARRY8 #(
                .CARRY_TYPE("SINGLE_CY8")
            ) u_carry (
                .CO(co[8*i+7:8*i]),
                .O(o[8*i+7:8*i]),
                .CI(ci[i]),
                .CI_TOP(1'b0),
                .DI(y[8*i+7:8*i]),
                .S(p[8*i+7:8*i])
            );
            assign ci[i+1] = co[8*i+7];
        end
    endgenerate
    assign s = o[W-1:0];
endmodule
`default_nettype wire

// LUT6_2: behavioural model of the UltraScale+ dual-output 6-input LUT, for simulation only (Verilator
// has no vendor library). O6 = INIT[{I5..I0}], O5 = INIT[{0,I4..I0}] (the lower half), as in AMD UG974.
// Must not be given to synthesis: Vivado and Yosys have the real primitive.
`default_nettype none
module LUT6_2 #(
    parameter [63:0] INIT = 64'h0
) (
    output wire O6,
    output wire O5,
    input  wire I0,
    input  wire I1,
    input  wire I2,
    input  wire I3,
    input  wire I4,
    input  wire I5
);
    wire [5:0] idx = {I5, I4, I3, I2, I1, I0};
    assign O6 = INIT[idx];
    assign O5 = INIT[{1'b0, idx[4:0]}];
endmodule
`default_nettype wire

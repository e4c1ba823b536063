// Fast behavioural model of fastml_lut2 (same module name and parameter): the two columns of INIT
// indexed by the address, exactly what the LUT6_2 with I5 tied high computes. Simulation only.
`default_nettype none
/* verilator lint_off DECLFILENAME */
module fastml_lut2 #(
    parameter [63:0] INIT = 64'h0
) (
    input  wire [4:0] a,
    output wire o6,
    output wire o5
);
    assign o6 = INIT[{1'b1, a}];
    assign o5 = INIT[{1'b0, a}];
endmodule
/* verilator lint_on DECLFILENAME */
`default_nettype wire

// CARRY8: behavioural model of the UltraScale+ 8-bit carry chain (CARRY_TYPE "SINGLE_CY8" only), for
// simulation only. Position i: O[i] = S[i] ^ c, then c = S[i] ? c : DI[i] and CO[i] = c; c starts at
// CI (AMD UG974). Must not be given to synthesis: Vivado and Yosys have the real primitive.
`default_nettype none
/* verilator lint_off UNUSEDPARAM */
/* verilator lint_off UNUSEDSIGNAL */
module CARRY8 #(
    parameter CARRY_TYPE = "SINGLE_CY8"
) (
    output reg  [7:0] CO,
    output reg  [7:0] O,
    input  wire       CI,
    input  wire       CI_TOP,
    input  wire [7:0] DI,
    input  wire [7:0] S
);
    /* verilator lint_on UNUSEDPARAM */
    /* verilator lint_on UNUSEDSIGNAL */
    reg c;
    integer i;
    always @* begin
        c = CI;
        for (i = 0; i < 8; i = i + 1) begin
            O[i] = S[i] ^ c;
            c = S[i] ? c : DI[i];
            CO[i] = c;
        end
    end
endmodule
`default_nettype wire

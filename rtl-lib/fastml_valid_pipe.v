// fastml_valid_pipe: the valid bit of a fastml-compile pipeline, delayed by LATENCY clocks.
//
// Part of fastml-compile's hand-written RTL library (rtl-lib/). Every generated top module instantiates
// it beside its data path. Conventions (docs/ARCHITECTURE.md): one clock `clk`, rising edge; `rst` is
// synchronous and active high and clears only the valid bits (data registers carry no reset, which saves
// routing and lets synthesis pack them freely); out_valid is in_valid delayed by exactly LATENCY >= 1.
`default_nettype none
module fastml_valid_pipe #(
    parameter integer LATENCY = 1
) (
    input  wire clk,
    input  wire rst,
    input  wire in_valid,
    output wire out_valid
);
    reg [LATENCY-1:0] valid_s;
    generate
        if (LATENCY == 1) begin : g_one
            always @(posedge clk) begin
                if (rst) valid_s <= 1'b0;
                else valid_s <= in_valid;
            end
        end else begin : g_many
            always @(posedge clk) begin
                if (rst) valid_s <= {LATENCY{1'b0}};
                else valid_s <= {valid_s[LATENCY-2:0], in_valid};
            end
        end
    endgenerate
    assign out_valid = valid_s[LATENCY-1];
endmodule
`default_nettype wire

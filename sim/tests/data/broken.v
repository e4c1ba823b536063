// Deliberately broken designs for fastml-sim's error-path tests.

// The valid register "resets" to 1: out_valid is high during reset.
module bad_reset (
    input  wire       clk,
    input  wire       rst,
    input  wire       in_valid,
    input  wire [7:0] in_data,
    output reg        out_valid,
    output reg  [7:0] out_data
);
    always @(posedge clk) begin
        out_data <= in_data;
        if (rst) out_valid <= 1'b1;
        else     out_valid <= in_valid;
    end
endmodule

// Drops every vector whose bit 0 is 1: fewer outputs than inputs.
module drop_odd (
    input  wire       clk,
    input  wire       rst,
    input  wire       in_valid,
    input  wire [7:0] in_data,
    output reg        out_valid,
    output reg  [7:0] out_data
);
    always @(posedge clk) begin
        out_data <= in_data;
        if (rst) out_valid <= 1'b0;
        else     out_valid <= in_valid & ~in_data[0];
    end
endmodule

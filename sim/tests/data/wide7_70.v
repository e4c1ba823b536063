// Test design for fastml-sim: latency-1, 7-bit input, 70-bit output (a VlWide<3>
// port in Verilator). out_data = {x (7 b), x*x (14 b), (x * 49'h1_2345_6789_ABCD) mod 2^49}.
module wide7_70 (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,
    input  wire [6:0]  in_data,
    output reg         out_valid,
    output reg  [69:0] out_data
);
    wire [48:0] k = 49'h1_2345_6789_ABCD;
    wire [48:0] x49 = {42'b0, in_data};
    wire [13:0] x14 = {7'b0, in_data};

    always @(posedge clk) begin
        out_data <= {in_data, x14 * x14, x49 * k};
        if (rst) out_valid <= 1'b0;
        else     out_valid <= in_valid;
    end
endmodule

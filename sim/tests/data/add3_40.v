// Test design for fastml-sim: 2-stage pipelined sum of three unsigned 40-bit
// numbers. in_data = {c, b, a} (a in bits 39:0), out_data = a + b + c (42 bits).
// Latency 2. Data registers have no reset; only the valid chain is reset,
// matching what fastml-compile generates.
module add3_40 (
    input  wire         clk,
    input  wire         rst,
    input  wire         in_valid,
    input  wire [119:0] in_data,
    output wire         out_valid,
    output wire [41:0]  out_data
);
    reg [40:0] ab;
    reg [39:0] c1;
    reg [41:0] sum;
    reg        v1, v2;

    always @(posedge clk) begin
        ab  <= {1'b0, in_data[39:0]} + {1'b0, in_data[79:40]};
        c1  <= in_data[119:80];
        sum <= {1'b0, ab} + {2'b0, c1};
        if (rst) begin
            v1 <= 1'b0;
            v2 <= 1'b0;
        end else begin
            v1 <= in_valid;
            v2 <= v1;
        end
    end

    assign out_valid = v2;
    assign out_data  = sum;
endmodule

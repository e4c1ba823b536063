// Does not parse: used to check that build failures are reported with the log.
module syntax_error (input wire clk, input wire rst, input wire in_valid,
    input wire [7:0] in_data, output wire out_valid, output wire [7:0] out_data);
    assign out_valid = in_valid
    assign out_data = in_data;
endmodule

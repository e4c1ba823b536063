// fastml_lut2: two ROM columns of the same 5-bit address in one UltraScale+ LUT6_2 (I5 tied high):
// o5 = INIT[{1'b0, a}], o6 = INIT[{1'b1, a}]. The compiler's `pack-luts` pass decides the pairs and
// writes INIT (low 32 bits: the O5 column, high 32 bits: the O6 column). Synthesis keeps the primitive,
// so each pair costs one LUT. For simulators without the vendor library, `sim/LUT6_2.v` models the
// primitive and `sim/fastml_lut2_model.v` is a plain behavioural model of this module.
`default_nettype none
module fastml_lut2 #(
    parameter [63:0] INIT = 64'h0
) (
    input  wire [4:0] a,
    output wire o6,
    output wire o5
);
    LUT6_2 #(
        .INIT(INIT)
    ) u_lut (
        .O6(o6),
        .O5(o5),
        .I0(a[0]),
        .I1(a[1]),
        .I2(a[2]),
        .I3(a[3]),
        .I4(a[4]),
        .I5(1'b1)
    );
endmodule
`default_nettype wire

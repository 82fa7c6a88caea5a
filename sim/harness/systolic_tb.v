// palhdl: the Icarus Verilog testbench of the systolic array (the stimulus/response harness of
// stream_main.cpp, in Verilog).
//
// Parameters (iverilog -P): AW, BW, CW, the payload widths of streams a, b, c; BEATS, the
// a/b beats; RESULTS, the c payloads to collect.
// Plusargs: +a=FILE +b=FILE ($readmemh: one hex payload a line), +out=FILE (c payloads, one hex
// payload a line), +seed=N (random stalls: each producer idles and the consumer drops ready on
// about a third of the cycles; absent: full rate), +vcd=FILE (a waveform).
// Prints "cycles N" at the end. A producer holds valid and its payload until the transfer.
`timescale 1ns / 1ps
module systolic_tb;
    parameter AW = 1, BW = 1, CW = 1, BEATS = 1, RESULTS = 1;

    reg clk = 0, rst = 1;
    reg [AW-1:0] a_mem [0:BEATS-1];
    reg [BW-1:0] b_mem [0:BEATS-1];
    reg [AW-1:0] a_payload = 0;
    reg [BW-1:0] b_payload = 0;
    reg a_valid = 0, b_valid = 0, c_ready = 0;
    wire a_ready, b_ready, c_valid;
    wire [CW-1:0] c_payload;

    systolic dut (
        .clk(clk), .rst(rst),
        .a__payload(a_payload), .a__valid(a_valid), .a__ready(a_ready),
        .b__payload(b_payload), .b__valid(b_valid), .b__ready(b_ready),
        .c__payload(c_payload), .c__valid(c_valid), .c__ready(c_ready)
    );

    integer seed, stalls, out, sent_a, sent_b, received, cycles, limit;
    reg fire_a, fire_b;
    reg [8*4096-1:0] path;

    function idle;  // the next draw of the stall pattern
        input dummy;
        begin
            idle = stalls && ($unsigned($random(seed)) % 3 == 0);
        end
    endfunction

    initial begin
        if (!$value$plusargs("a=%s", path)) $fatal(1, "palhdl testbench: no +a=FILE");
        $readmemh(path, a_mem);
        if (!$value$plusargs("b=%s", path)) $fatal(1, "palhdl testbench: no +b=FILE");
        $readmemh(path, b_mem);
        if (!$value$plusargs("out=%s", path)) $fatal(1, "palhdl testbench: no +out=FILE");
        out = $fopen(path, "w");
        stalls = $value$plusargs("seed=%d", seed);
        if ($value$plusargs("vcd=%s", path)) begin
            $dumpfile(path);
            $dumpvars(0, dut);
        end
        #1 clk = 1;
        #1 clk = 0;
        rst = 0;
        sent_a = 0; sent_b = 0; received = 0; cycles = 0;
        limit = 4 * (2 * BEATS + RESULTS) + 1000;
        while (received < RESULTS) begin
            if (!a_valid && sent_a < BEATS && !idle(0)) begin
                a_valid = 1;
                a_payload = a_mem[sent_a];
            end
            if (!b_valid && sent_b < BEATS && !idle(0)) begin
                b_valid = 1;
                b_payload = b_mem[sent_b];
            end
            c_ready = !idle(0);
            #1;
            fire_a = a_valid && a_ready;
            fire_b = b_valid && b_ready;
            if (c_valid && c_ready) begin
                $fwrite(out, "%h\n", c_payload);
                received = received + 1;
            end
            clk = 1;
            #1 clk = 0;
            if (fire_a) begin a_valid = 0; sent_a = sent_a + 1; end
            if (fire_b) begin b_valid = 0; sent_b = sent_b + 1; end
            cycles = cycles + 1;
            if (cycles > limit) $fatal(1, "palhdl testbench: %0d of %0d results in %0d cycles",
                                       received, RESULTS, cycles);
        end
        $fclose(out);
        $display("cycles %0d", cycles);
        $finish;
    end
endmodule

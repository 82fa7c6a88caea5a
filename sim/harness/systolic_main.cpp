// palhdl: the compiled stimulus/response harness of the systolic array on Verilator.
//
// Usage: Vsystolic STIMULUS RESPONSE BEATS RESULTS SEED [TRACE]
//   STIMULUS  BEATS a payloads, then BEATS b payloads, each as little-endian 32-bit words
//             (as many words as the port has: ports of up to 32 bits take one word, wider
//             ones ceil(width / 32), Verilator's VlWide layout);
//   RESPONSE  written: RESULTS c payloads in the same word format;
//   SEED      -1 streams at full rate, else the seed of random stalls (each producer idles
//             and the consumer drops ready on about a third of the cycles);
//   TRACE     a waveform file (only in a model verilated with --trace or --trace-fst).
// Prints "cycles N seconds S" on success. The streams honour the valid/ready rules: a
// producer holds valid and its payload until the transfer.
//
// Amaranth names the stream ports a__payload, a__valid, ...; Verilator spells a double
// underscore "___05F" in C++ member names.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "Vsystolic.h"
#include "verilated.h"
#if VM_TRACE_FST
#include "verilated_fst_c.h"
using Trace = VerilatedFstC;
#elif VM_TRACE
#include "verilated_vcd_c.h"
using Trace = VerilatedVcdC;
#endif

namespace {

template <typename T>
constexpr std::size_t words_of(const T&) {
    return sizeof(T) <= 4 ? 1 : sizeof(T) / 4;
}

template <typename T>
void put(T& port, const uint32_t* words) {
    if constexpr (sizeof(T) <= 4) {
        port = static_cast<T>(words[0]);
    } else {
        port = static_cast<T>(words[0]) | (static_cast<T>(words[1]) << 32);
    }
}

template <std::size_t N>
void put(VlWide<N>& port, const uint32_t* words) {
    for (std::size_t i = 0; i < N; ++i) port[i] = words[i];
}

template <typename T>
void get(const T& port, uint32_t* words) {
    words[0] = static_cast<uint32_t>(port);
    if constexpr (sizeof(T) > 4) words[1] = static_cast<uint32_t>(static_cast<uint64_t>(port) >> 32);
}

template <std::size_t N>
void get(const VlWide<N>& port, uint32_t* words) {
    for (std::size_t i = 0; i < N; ++i) words[i] = port[i];
}

// splitmix64: the stall pattern of a seed.
struct Stalls {
    bool on;
    uint64_t state;
    bool next() {
        if (!on) return false;
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return (z ^ (z >> 31)) % 3 == 0;
    }
};

int fail(const char* message) {
    std::fprintf(stderr, "palhdl harness: %s\n", message);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) return fail("usage: Vsystolic STIMULUS RESPONSE BEATS RESULTS SEED [TRACE]");
    const uint64_t beats = std::strtoull(argv[3], nullptr, 10);
    const uint64_t results = std::strtoull(argv[4], nullptr, 10);
    const long long seed = std::strtoll(argv[5], nullptr, 10);
    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(1, argv);
    auto top = std::make_unique<Vsystolic>(context.get());
    const std::size_t aw = words_of(top->a___05Fpayload);
    const std::size_t bw = words_of(top->b___05Fpayload);
    const std::size_t cw = words_of(top->c___05Fpayload);

    std::vector<uint32_t> stimulus(beats * (aw + bw));
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) return fail("cannot open the stimulus file");
    const std::size_t got = std::fread(stimulus.data(), 4, stimulus.size(), in);
    const bool extra = std::fgetc(in) != EOF;
    std::fclose(in);
    if (got != stimulus.size() || extra) return fail("stimulus size does not match the ports");
    const uint32_t* a_words = stimulus.data();
    const uint32_t* b_words = stimulus.data() + beats * aw;
    std::vector<uint32_t> response(results * cw);

#if VM_TRACE
    std::unique_ptr<Trace> trace;
    if (argc > 6) {
        context->traceEverOn(true);
        trace = std::make_unique<Trace>();
        top->trace(trace.get(), 99);
        trace->open(argv[6]);
    }
#endif
    uint64_t time = 0;
    auto half = [&](int clk) {
        top->clk = clk;
        top->eval();
#if VM_TRACE
        if (trace) trace->dump(time);
#endif
        ++time;
    };
    top->rst = 1;
    half(0);
    half(1);
    top->rst = 0;

    Stalls stalls{seed >= 0, static_cast<uint64_t>(seed)};
    const uint64_t limit = 4 * (2 * beats + results) + 1000;
    uint64_t sent_a = 0, sent_b = 0, received = 0, cycles = 0;
    bool hold_a = false, hold_b = false;
    const auto started = std::chrono::steady_clock::now();
    while (received < results) {
        if (!hold_a && sent_a < beats && !stalls.next()) {
            hold_a = true;
            put(top->a___05Fpayload, a_words + sent_a * aw);
        }
        if (!hold_b && sent_b < beats && !stalls.next()) {
            hold_b = true;
            put(top->b___05Fpayload, b_words + sent_b * bw);
        }
        top->a___05Fvalid = hold_a;
        top->b___05Fvalid = hold_b;
        top->c___05Fready = !stalls.next();
        half(0);
        if (hold_a && top->a___05Fready) hold_a = false, ++sent_a;
        if (hold_b && top->b___05Fready) hold_b = false, ++sent_b;
        if (top->c___05Fvalid && top->c___05Fready) get(top->c___05Fpayload, response.data() + cw * received++);
        half(1);
        if (++cycles > limit) {
            std::fprintf(stderr, "palhdl harness: %llu of %llu results in %llu cycles\n",
                         (unsigned long long)received, (unsigned long long)results,
                         (unsigned long long)cycles);
            return 3;
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    top->final();
#if VM_TRACE
    if (trace) trace->close();
#endif
    FILE* out = std::fopen(argv[2], "wb");
    if (!out) return fail("cannot open the response file");
    const bool written = std::fwrite(response.data(), 4, response.size(), out) == response.size();
    if (std::fclose(out) != 0 || !written) return fail("cannot write the response file");
    std::printf("cycles %llu seconds %.9f\n", (unsigned long long)cycles, seconds);
    return 0;
}

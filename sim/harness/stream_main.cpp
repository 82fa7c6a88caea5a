// palhdl: the compiled stimulus/response harness of any component with valid/ready streams.
//
// Built with a generated "stream_ports.h" (palhdl.sim.compiled.ports_header) that includes the
// verilated model, names it `Top` and lists its input and output streams in kInputs and
// kOutputs (payload words and accessors of each stream's __payload, __valid and __ready
// ports), and defines PALHDL_CLOCKED when the model has clk and rst ports.
//
// Usage: Vstream STIMULUS RESPONSE SEED LIMIT IN_COUNT... OUT_COUNT... [TRACE]
//   STIMULUS  the payloads of every input stream in kInputs order, stream after stream, each
//             payload as little-endian 32-bit words (a stream's `words` per payload: ports of
//             up to 32 bits take one word, wider ones ceil(width / 32), Verilator's VlWide
//             layout; a stream without payload takes none);
//   RESPONSE  written: the payloads of every output stream in kOutputs order, same format;
//   SEED      -1 streams at full rate, else the seed of random stalls (each producer idles and
//             each consumer drops ready on about a third of the cycles);
//   LIMIT     fail (exit 3) when the streams are not done after this many cycles;
//   IN_COUNT  payloads to send on each input stream, OUT_COUNT to collect from each output;
//   TRACE     a waveform file (only in a model verilated with --trace or --trace-fst).
// Prints "cycles N seconds S" on success: N is the cycle in which the last output payload
// arrived. A producer holds valid and its payload until the transfer; a consumer drops ready
// once it has its count.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "verilated.h"
#if VM_TRACE_FST
#include "verilated_fst_c.h"
using Trace = VerilatedFstC;
#elif VM_TRACE
#include "verilated_vcd_c.h"
using Trace = VerilatedVcdC;
#endif

namespace palhdl {

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

template <typename Top>
struct InPort {
    std::size_t words;
    void (*put)(Top&, const uint32_t*);
    void (*valid)(Top&, bool);
    bool (*ready)(const Top&);
};

template <typename Top>
struct OutPort {
    std::size_t words;
    void (*get)(const Top&, uint32_t*);
    bool (*valid)(const Top&);
    void (*ready)(Top&, bool);
};

}  // namespace palhdl

#include "stream_ports.h"

namespace {

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

struct Producer {
    const uint32_t* words;
    uint64_t count, sent;
    bool hold;
};

struct Consumer {
    uint32_t* words;
    uint64_t count, received;
    bool ready;
};

}  // namespace

int main(int argc, char** argv) {
    const std::size_t ins = kInputs.size(), outs = kOutputs.size();
    if (static_cast<std::size_t>(argc) < 5 + ins + outs) {
        return fail("usage: Vstream STIMULUS RESPONSE SEED LIMIT IN_COUNT... OUT_COUNT... [TRACE]");
    }
    const long long seed = std::strtoll(argv[3], nullptr, 10);
    const uint64_t limit = std::strtoull(argv[4], nullptr, 10);
    std::vector<uint64_t> counts(ins + outs);
    std::size_t in_words = 0, out_words = 0;
    for (std::size_t i = 0; i < ins + outs; ++i) {
        counts[i] = std::strtoull(argv[5 + i], nullptr, 10);
        if (i < ins) in_words += counts[i] * kInputs[i].words;
        else out_words += counts[i] * kOutputs[i - ins].words;
    }
    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(1, argv);
    auto top = std::make_unique<Top>(context.get());

    std::vector<uint32_t> stimulus(in_words), response(out_words);
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) return fail("cannot open the stimulus file");
    const std::size_t got = std::fread(stimulus.data(), 4, stimulus.size(), in);
    const bool extra = std::fgetc(in) != EOF;
    std::fclose(in);
    if (got != stimulus.size() || extra) return fail("stimulus size does not match the ports");
    std::vector<Producer> producers;
    std::vector<Consumer> consumers;
    const uint32_t* next_in = stimulus.data();
    for (std::size_t i = 0; i < ins; ++i) {
        producers.push_back({next_in, counts[i], 0, false});
        next_in += counts[i] * kInputs[i].words;
    }
    uint32_t* next_out = response.data();
    for (std::size_t i = 0; i < outs; ++i) {
        consumers.push_back({next_out, counts[ins + i], 0, false});
        next_out += counts[ins + i] * kOutputs[i].words;
    }

    const int trace_arg = static_cast<int>(5 + ins + outs);
#if VM_TRACE
    std::unique_ptr<Trace> trace;
    if (argc > trace_arg) {
        context->traceEverOn(true);
        trace = std::make_unique<Trace>();
        top->trace(trace.get(), 99);
        trace->open(argv[trace_arg]);
    }
#else
    if (argc > trace_arg) return fail("this model was built without waveform support");
#endif
    uint64_t time = 0;
    auto half = [&](int clk) {
#ifdef PALHDL_CLOCKED
        top->clk = clk;
#endif
        top->eval();
#if VM_TRACE
        if (trace) trace->dump(time);
#endif
        ++time;
    };
#ifdef PALHDL_CLOCKED
    top->rst = 1;
    half(0);
    half(1);
    top->rst = 0;
#endif

    Stalls stalls{seed >= 0, static_cast<uint64_t>(seed)};
    uint64_t cycles = 0, last = 0;
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
        bool done = true;
        for (const Producer& p : producers) done = done && p.sent == p.count;
        for (const Consumer& c : consumers) done = done && c.received == c.count;
        if (done) break;
        if (cycles == limit) {
            std::fprintf(stderr, "palhdl harness: streams not done after %llu cycles; received",
                         (unsigned long long)cycles);
            for (const Consumer& c : consumers) {
                std::fprintf(stderr, " %llu of %llu", (unsigned long long)c.received,
                             (unsigned long long)c.count);
            }
            std::fprintf(stderr, "\n");
            return 3;
        }
        ++cycles;
        for (std::size_t i = 0; i < ins; ++i) {
            Producer& p = producers[i];
            if (!p.hold && p.sent < p.count && !stalls.next()) {
                p.hold = true;
                kInputs[i].put(*top, p.words + p.sent * kInputs[i].words);
            }
            kInputs[i].valid(*top, p.hold);
        }
        for (std::size_t i = 0; i < outs; ++i) {
            Consumer& c = consumers[i];
            c.ready = c.received < c.count && !stalls.next();
            kOutputs[i].ready(*top, c.ready);
        }
        half(0);
        for (std::size_t i = 0; i < ins; ++i) {
            Producer& p = producers[i];
            if (p.hold && kInputs[i].ready(*top)) p.hold = false, ++p.sent;
        }
        for (std::size_t i = 0; i < outs; ++i) {
            Consumer& c = consumers[i];
            if (c.ready && kOutputs[i].valid(*top)) {
                if (kOutputs[i].words) kOutputs[i].get(*top, c.words + c.received * kOutputs[i].words);
                ++c.received;
                last = cycles;
            }
        }
        half(1);
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
    std::printf("cycles %llu seconds %.9f\n", (unsigned long long)last, seconds);
    return 0;
}

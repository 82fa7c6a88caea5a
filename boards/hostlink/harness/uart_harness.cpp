// A verilated HostLinkCore behind its UART pins, driven over stdin/stdout.
//
// Usage: harness DIVISOR. The model's top module must have the ports clk, rst, rx, tx and status
// (palhdl.boards.hostlink.core.HostLinkCore exported as module "hostlink_core"). The harness holds
// rst high for two cycles, then waits for requests on stdin (little endian):
//
//   'W' u32 n, n bytes   queue the bytes for rx (8N1, DIVISOR cycles a bit); no reply
//   'R' u32 n, u64 c     clock until n bytes have been decoded from tx or c cycles have passed;
//                        reply u64 cycles so far, u8 status, u32 m, the m bytes decoded
//   'Q'                  exit (so does the end of stdin)
//
// The core is clocked only inside 'R', so simulated time passes only while the host reads and
// the harness sleeps in read(2) otherwise. tx is decoded as a UART receiver does: a start bit
// checked half a bit after its falling edge, each bit sampled in its middle, the stop bit
// checked; a short start bit or a low stop bit ends the harness with a message on stderr
// (exit status 3).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <unistd.h>
#include <vector>

#include "Vhostlink_core.h"
#include "verilated.h"

namespace {

void read_all(void *buffer, size_t size) {
    auto *p = static_cast<uint8_t *>(buffer);
    while (size > 0) {
        ssize_t got = read(0, p, size);
        if (got <= 0) std::exit(0);  // the host closed the pipe
        p += got;
        size -= static_cast<size_t>(got);
    }
}

void write_all(const void *buffer, size_t size) {
    const auto *p = static_cast<const uint8_t *>(buffer);
    while (size > 0) {
        ssize_t put = write(1, p, size);
        if (put <= 0) std::exit(0);
        p += put;
        size -= static_cast<size_t>(put);
    }
}

template <typename T> T read_value() {
    T value;
    read_all(&value, sizeof value);
    return value;
}

[[noreturn]] void fail(const char *what, uint64_t cycle) {
    std::fprintf(stderr, "HostLinkCore tx: %s at cycle %llu\n", what,
                 static_cast<unsigned long long>(cycle));
    std::exit(3);
}

class Uart {
  public:
    Uart(Vhostlink_core *core, uint32_t divisor) : core_(core), divisor_(divisor) {}

    void queue(const std::vector<uint8_t> &bytes) { to_core_.insert(to_core_.end(), bytes.begin(), bytes.end()); }

    // One clock cycle: drive rx, rising edge, sample tx.
    void cycle() {
        drive_rx();
        core_->clk = 0;
        core_->eval();
        core_->clk = 1;
        core_->eval();
        ++cycles_;
        watch_tx();
    }

    uint64_t cycles() const { return cycles_; }
    std::vector<uint8_t> &decoded() { return from_core_; }

  private:
    void drive_rx() {
        if (rx_left_ == 0) {
            if (rx_bit_ == 10 && !to_core_.empty()) {  // idle: start the next character
                rx_char_ = to_core_.front();
                to_core_.pop_front();
                rx_bit_ = 0;
            }
            if (rx_bit_ < 10) {
                core_->rx = rx_bit_ == 0 ? 0 : rx_bit_ == 9 ? 1 : (rx_char_ >> (rx_bit_ - 1)) & 1;
                ++rx_bit_;
                rx_left_ = divisor_;
            } else {
                core_->rx = 1;
            }
        }
        if (rx_left_ > 0) --rx_left_;
    }

    void watch_tx() {
        const int tx = core_->tx;
        if (tx_bit_ < 0) {  // idle: wait for a start bit
            if (!tx && tx_last_) {
                tx_bit_ = 0;
                tx_wait_ = divisor_ / 2;
                tx_char_ = 0;
            }
        } else if (--tx_wait_ == 0) {
            if (tx_bit_ == 0 && tx) fail("start bit shorter than half a bit", cycles_);
            if (tx_bit_ >= 1 && tx_bit_ <= 8) tx_char_ |= tx << (tx_bit_ - 1);
            if (tx_bit_ == 9) {
                if (!tx) fail("framing error (stop bit low)", cycles_);
                from_core_.push_back(static_cast<uint8_t>(tx_char_));
                tx_bit_ = -1;
            } else {
                ++tx_bit_;
                tx_wait_ = divisor_;
            }
        }
        tx_last_ = tx;
    }

    Vhostlink_core *core_;
    uint32_t divisor_;
    uint64_t cycles_ = 0;
    std::deque<uint8_t> to_core_;
    int rx_bit_ = 10;  // 0: start bit, 1..8: data, 9: stop bit, 10: idle
    uint32_t rx_left_ = 0;
    int rx_char_ = 0;
    std::vector<uint8_t> from_core_;
    int tx_bit_ = -1;  // -1: idle, 0: start bit, 1..8: data, 9: stop bit
    uint32_t tx_wait_ = 0;
    int tx_char_ = 0;
    int tx_last_ = 1;
};

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIVISOR\n", argv[0]);
        return 2;
    }
    const long divisor = std::strtol(argv[1], nullptr, 10);
    if (divisor < 4) {
        std::fprintf(stderr, "%s: DIVISOR must be at least 4, not %s\n", argv[0], argv[1]);
        return 2;
    }
    auto context = new VerilatedContext;
    auto core = new Vhostlink_core{context};
    Uart uart(core, static_cast<uint32_t>(divisor));
    core->rx = 1;
    core->rst = 1;
    uart.cycle();
    uart.cycle();
    core->rst = 0;
    std::vector<uint8_t> payload;
    for (;;) {
        const auto op = read_value<uint8_t>();
        if (op == 'W') {
            payload.resize(read_value<uint32_t>());
            read_all(payload.data(), payload.size());
            uart.queue(payload);
        } else if (op == 'R') {
            const auto wanted = read_value<uint32_t>();
            const auto limit = read_value<uint64_t>();
            auto &decoded = uart.decoded();
            for (uint64_t run = 0; decoded.size() < wanted && run < limit; ++run) uart.cycle();
            const uint64_t cycles = uart.cycles();
            const uint8_t status = core->status;
            const auto size = static_cast<uint32_t>(decoded.size());
            std::string reply(reinterpret_cast<const char *>(&cycles), sizeof cycles);
            reply.push_back(static_cast<char>(status));
            reply.append(reinterpret_cast<const char *>(&size), sizeof size);
            reply.append(decoded.begin(), decoded.end());
            write_all(reply.data(), reply.size());
            decoded.clear();
        } else if (op == 'Q') {
            break;
        } else {
            std::fprintf(stderr, "%s: unknown request 0x%02x\n", argv[0], op);
            return 2;
        }
    }
    core->final();
    delete core;
    delete context;
    return 0;
}

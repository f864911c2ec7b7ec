// Tests of the BLE source: the Heart Rate Measurement decoder against values worked out by
// hand from the GATT specification, and BleSource end to end against a fake BlueZ
// (tests/fixtures/fake_bluez.py) on a private dbus-daemon.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "edge/ble_source.h"
#include "edge/heart_rate_measurement.h"
#include "unit/test_support.h"

namespace cipherpulse::edge {
namespace {

using Bytes = std::vector<std::uint8_t>;

HeartRateMeasurement decode_ok(const Bytes& value) {
    auto result = decode_heart_rate_measurement(value);
    EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
    return result.ok() ? result.value() : HeartRateMeasurement{};
}

// ---------------------------------------------------------------------------------------
// Decoder known answers

TEST(HeartRateMeasurementTest, Uint8HeartRateWithoutOptionalFields) {
    const auto m = decode_ok({0x00, 72});
    EXPECT_EQ(m.bpm, 72);
    EXPECT_EQ(m.contact, std::nullopt);
    EXPECT_EQ(m.energy_kj, std::nullopt);
    EXPECT_TRUE(m.rr_ms.empty());
}

TEST(HeartRateMeasurementTest, Uint16HeartRateIsLittleEndian) {
    EXPECT_EQ(decode_ok({0x01, 0x2C, 0x01}).bpm, 300);  // 0x012C
    EXPECT_EQ(decode_ok({0x01, 72, 0x00}).bpm, 72);
    EXPECT_EQ(decode_ok({0x00, 0xFF}).bpm, 255);
}

TEST(HeartRateMeasurementTest, SensorContactStatusBits) {
    EXPECT_EQ(decode_ok({0x00, 60}).contact, std::nullopt);  // 0: not supported
    EXPECT_EQ(decode_ok({0x02, 60}).contact, std::nullopt);  // 1: not supported
    EXPECT_EQ(decode_ok({0x04, 60}).contact, false);         // 2: supported, not detected
    EXPECT_EQ(decode_ok({0x06, 60}).contact, true);          // 3: supported, detected
}

TEST(HeartRateMeasurementTest, EnergyExpended) {
    const auto m = decode_ok({0x08, 80, 0x34, 0x12});
    EXPECT_EQ(m.bpm, 80);
    EXPECT_EQ(m.energy_kj, std::optional<std::uint16_t>(0x1234));
    EXPECT_TRUE(m.rr_ms.empty());
}

TEST(HeartRateMeasurementTest, RrIntervalsInMillisecondsRounded) {
    // 1024/1024 s = 1000 ms, 512/1024 s = 500 ms.
    EXPECT_EQ(decode_ok({0x10, 60, 0x00, 0x04, 0x00, 0x02}).rr_ms,
              (std::vector<std::uint32_t>{1000, 500}));
    // 819 units = 799.80 ms -> 800; 1 unit = 0.977 ms -> 1; 1023 units = 999.02 ms -> 999;
    // 0xFFFF = 63999.02 ms -> 63999.
    EXPECT_EQ(decode_ok({0x10, 60, 0x33, 0x03, 0x01, 0x00, 0xFF, 0x03, 0xFF, 0xFF}).rr_ms,
              (std::vector<std::uint32_t>{800, 1, 999, 63999}));
    // Exactly half a millisecond rounds up: 64 units = 62.5 ms -> 63.
    EXPECT_EQ(decode_ok({0x10, 60, 0x40, 0x00}).rr_ms, (std::vector<std::uint32_t>{63}));
}

TEST(HeartRateMeasurementTest, AllFieldsTogether) {
    // UINT16 72 bpm, contact detected, 16 kJ, RR 1000 ms and 750 ms (768 units).
    const auto m = decode_ok({0x1F, 0x48, 0x00, 0x10, 0x00, 0x00, 0x04, 0x00, 0x03});
    EXPECT_EQ(m.bpm, 72);
    EXPECT_EQ(m.contact, true);
    EXPECT_EQ(m.energy_kj, std::optional<std::uint16_t>(16));
    EXPECT_EQ(m.rr_ms, (std::vector<std::uint32_t>{1000, 750}));
}

TEST(HeartRateMeasurementTest, ReservedFlagBitsAreIgnored) {
    EXPECT_EQ(decode_ok({0xE0, 72}).bpm, 72);
}

TEST(HeartRateMeasurementTest, RefusesTruncatedAndInconsistentValues) {
    const struct {
        Bytes value;
        const char* says;
    } cases[] = {
        {{}, "empty"},
        {{0x00}, "UINT8 heart rate"},
        {{0x01, 72}, "UINT16 heart rate"},
        {{0x08, 72, 0x01}, "energy expended"},
        {{0x09, 72, 0x00}, "energy expended"},
        {{0x10, 72}, "no RR interval"},
        {{0x10, 72, 0x00}, "RR interval"},
        {{0x10, 72, 0x00, 0x04, 0x00}, "RR interval"},
        {{0x00, 72, 0x00}, "unexpected byte"},
        {{0x08, 72, 0x01, 0x00, 0x00, 0x04}, "unexpected byte"},
    };
    for (const auto& c : cases) {
        const auto result = decode_heart_rate_measurement(c.value);
        ASSERT_FALSE(result.ok()) << "accepted " << c.value.size() << " bytes expected: " << c.says;
        EXPECT_EQ(result.error().code, ErrorCode::kInvalidLength);
        EXPECT_NE(result.error().message.find(c.says), std::string::npos) << result.error().message;
    }
}

TEST(HeartRateMeasurementTest, ToReading) {
    HeartRateMeasurement m{.bpm = 72, .contact = std::nullopt, .energy_kj = 5, .rr_ms = {830}};
    Reading r = to_reading(m, 1'700'000'000'123);
    EXPECT_EQ(r.t_ms, 1'700'000'000'123);
    EXPECT_EQ(r.bpm, std::optional<double>(72));
    EXPECT_EQ(r.rr_ms, (std::vector<std::uint32_t>{830}));
    EXPECT_TRUE(r.contact);

    m.contact = true;
    EXPECT_TRUE(to_reading(m, 0).contact);

    m.contact = false;  // no skin contact: neither bpm nor RR are trustworthy
    r = to_reading(m, 5);
    EXPECT_FALSE(r.contact);
    EXPECT_EQ(r.bpm, std::nullopt);
    EXPECT_TRUE(r.rr_ms.empty());

    HeartRateMeasurement no_rate;
    no_rate.bpm = 0;  // sensors send 0 while they have no rate yet
    EXPECT_EQ(to_reading(no_rate, 0).bpm, std::nullopt);
}

// ---------------------------------------------------------------------------------------
// BleSource against a fake BlueZ on a private bus

using cipherpulse::testing::repo_root;
using cipherpulse::testing::TempDir;

// Child is a spawned process whose stdout the test reads line by line; its stderr goes to
// a file. The destructor terminates it (SIGTERM, then SIGKILL) and reaps it, by pid.
class Child {
  public:
    Child(const std::vector<std::string>& argv, const std::filesystem::path& stderr_file) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe2 failed");
        }
        std::vector<char*> args;
        for (const auto& arg : argv) {
            args.push_back(const_cast<char*>(arg.c_str()));
        }
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (err >= 0) {
                ::dup2(err, STDERR_FILENO);
            }
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        stdout_ = fds[0];
        if (pid_ < 0) {
            ::close(stdout_);
            throw std::runtime_error("fork failed");
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        ::close(stdout_);
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 40; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }

    // read_line returns the next stdout line, or nullopt on EOF or after `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string line;
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd fd{stdout_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&fd, 1, static_cast<int>(left.count())) <= 0) {
                return std::nullopt;
            }
            char c;
            if (::read(stdout_, &c, 1) != 1) {
                return std::nullopt;
            }
            if (c == '\n') {
                return line;
            }
            line += c;
        }
    }

  private:
    pid_t pid_ = -1;
    int stdout_ = -1;
};

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

int count_lines(const std::string& text, const std::string& line) {
    int count = 0;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        count += l == line ? 1 : 0;
    }
    return count;
}

// Watchdog calls source.stop() if the test has not finished within `limit`, so that a
// hanging next() turns into a failure instead of a hung test.
class Watchdog {
  public:
    Watchdog(BleSource& source, std::chrono::milliseconds limit)
        : thread_([this, &source, limit] {
              std::unique_lock lock(mutex_);
              if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
                  source.stop();
              }
          }) {}
    ~Watchdog() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        done_cv_.notify_all();
        thread_.join();
    }

  private:
    std::mutex mutex_;
    std::condition_variable done_cv_;
    bool done_ = false;
    std::thread thread_;
};

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kDbusDaemon = "/usr/bin/dbus-daemon";

class BleSourceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::access(kDbusDaemon, X_OK) != 0) {
            GTEST_SKIP() << kDbusDaemon << " is missing (Debian package dbus-daemon)";
        }
        if (std::system("/usr/bin/python3 -c 'import dbus, dbus.mainloop.glib; "
                        "from gi.repository import GLib' >/dev/null 2>&1") != 0) {
            GTEST_SKIP() << "python3-dbus or python3-gi is missing";
        }
        fake_ = repo_root() / "tests/fixtures/fake_bluez.py";
        ASSERT_TRUE(std::filesystem::exists(fake_)) << fake_;

        const auto config = temp_.path() / "bus.conf";
        std::ofstream(config)
            << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
               "1.0//EN\"\n"
               " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
               "<busconfig>\n  <type>session</type>\n"
               "  <listen>unix:path="
            << (temp_.path() / "bus").string()
            << "</listen>\n"
               "  <auth>EXTERNAL</auth>\n"
               "  <policy context=\"default\">\n"
               "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
               "    <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n"
               "  </policy>\n</busconfig>\n";
        bus_.emplace(std::vector<std::string>{kDbusDaemon, "--config-file=" + config.string(),
                                              "--print-address", "--nofork"},
                     temp_.path() / "dbus-daemon.log");
        const auto address = bus_->read_line(std::chrono::seconds(10));
        ASSERT_TRUE(address && !address->empty())
            << "dbus-daemon did not start: " << read_file(temp_.path() / "dbus-daemon.log");
        const char* previous = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
        previous_address_ =
            previous != nullptr ? std::optional<std::string>(previous) : std::nullopt;
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", address->c_str(), 1);
    }

    void TearDown() override {
        fake_process_.reset();
        bus_.reset();
        if (previous_address_) {
            ::setenv("DBUS_SYSTEM_BUS_ADDRESS", previous_address_->c_str(), 1);
        } else {
            ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        }
    }

    // start_fake runs the fake peripheral with `script` and waits until it owns org.bluez.
    void start_fake(const std::string& script, int interval_ms, int disconnect_after) {
        fake_process_.emplace(
            std::vector<std::string>{kPython, fake_.string(), "--script", script, "--interval-ms",
                                     std::to_string(interval_ms), "--disconnect-after",
                                     std::to_string(disconnect_after)},
            fake_log());
        const auto ready = fake_process_->read_line(std::chrono::seconds(10));
        ASSERT_EQ(ready, std::optional<std::string>("READY")) << read_file(fake_log());
    }

    std::filesystem::path fake_log() const { return temp_.path() / "fake_bluez.log"; }

    static BleSourceOptions fast_options() {
        BleSourceOptions options;
        options.initial_backoff = std::chrono::milliseconds(100);
        options.max_backoff = std::chrono::milliseconds(400);
        return options;
    }

    TempDir temp_;
    std::filesystem::path fake_;
    std::optional<Child> bus_;
    std::optional<Child> fake_process_;
    std::optional<std::string> previous_address_;
};

struct Expected {
    std::optional<double> bpm;
    std::vector<std::uint32_t> rr_ms;
    bool contact;
};

TEST_F(BleSourceTest, ReadsNotificationsAndReconnectsAfterADisconnect) {
    // Six notifications; the fake drops the connection after the third, then accepts the
    // source's reconnect and sends the rest.
    const std::string script = R"([
        {"bpm": 72, "rr_ms": [833], "contact": true},
        {"bpm": 75, "rr_ms": [800, 790], "contact": true},
        {"bpm": 300, "uint16": true, "rr_ms": [], "contact": null},
        {"bpm": 70, "rr_ms": [857], "contact": false},
        {"bpm": 64, "rr_ms": [937, 1000], "contact": true, "energy_kj": 12},
        {"bpm": 61, "rr_ms": [983], "contact": null}
    ])";
    const std::vector<Expected> expected = {
        {72, {833}, true},         {75, {800, 790}, true},  {300, {}, true},
        {std::nullopt, {}, false}, {64, {937, 1000}, true}, {61, {983}, true},
    };
    start_fake(script, 50, 3);

    BleSource source(fast_options());
    Watchdog watchdog(source, std::chrono::seconds(20));
    std::int64_t previous_t = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        const auto reading = source.next();
        ASSERT_TRUE(reading) << "no reading " << i << "; fake log:\n" << read_file(fake_log());
        EXPECT_EQ(reading->bpm, expected[i].bpm) << i;
        EXPECT_EQ(reading->rr_ms, expected[i].rr_ms) << i;
        EXPECT_EQ(reading->contact, expected[i].contact) << i;
        EXPECT_GE(reading->t_ms, previous_t) << i;
        EXPECT_LE(reading->t_ms, before + 1000 * 20) << i;
        EXPECT_GT(reading->t_ms, 1'600'000'000'000) << i;  // wall clock, Unix ms
        previous_t = reading->t_ms;
    }
    source.stop();
    EXPECT_EQ(source.next(), std::nullopt);

    // The second half really came through a second connection.
    const std::string log = read_file(fake_log());
    EXPECT_EQ(count_lines(log, "fake_bluez: simulating disconnect"), 1) << log;
    EXPECT_EQ(count_lines(log, "fake_bluez: connect"), 2) << log;
    EXPECT_EQ(count_lines(log, "fake_bluez: start notify"), 2) << log;
}

TEST_F(BleSourceTest, FiltersByAddressAndName) {
    start_fake(R"([{"bpm": 90}])", 50, 0);
    {
        BleSourceOptions options = fast_options();
        options.address = "aa:bb:cc:dd:ee:ff";  // case-insensitive
        options.name = "Fake";
        BleSource source(options);
        Watchdog watchdog(source, std::chrono::seconds(10));
        const auto reading = source.next();
        ASSERT_TRUE(reading) << read_file(fake_log());
        EXPECT_EQ(reading->bpm, std::optional<double>(90));
    }
    for (auto [address, name] : {std::pair{"11:22:33:44:55:66", ""}, std::pair{"", "Polar"}}) {
        BleSourceOptions options = fast_options();
        options.address = address;
        options.name = name;
        BleSource source(options);
        Watchdog watchdog(source, std::chrono::milliseconds(600));
        EXPECT_EQ(source.next(), std::nullopt) << address << " " << name;  // stop() ends it
    }
}

TEST(BleSourceOptionsTest, RejectsBadBackoffs) {
    BleSourceOptions options;
    options.initial_backoff = std::chrono::milliseconds(0);
    EXPECT_THROW(BleSource{options}, std::invalid_argument);
    options.initial_backoff = std::chrono::milliseconds(2000);
    options.max_backoff = std::chrono::milliseconds(1000);
    EXPECT_THROW(BleSource{options}, std::invalid_argument);
    options = BleSourceOptions{};
    options.max_queued = 0;
    EXPECT_THROW(BleSource{options}, std::invalid_argument);
}

}  // namespace
}  // namespace cipherpulse::edge

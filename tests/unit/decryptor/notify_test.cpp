// Tests of the notifiers: the composed messages (checked with Python's own e-mail parser,
// an implementation independent of ours), and delivery to real peers on loopback — the
// SMTP server and webhook receiver in tests/fixtures, run as child processes, with a
// throwaway CA and server certificate made by the openssl command for this run.
#include "decryptor/notify.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "unit/test_support.h"

extern char** environ;

namespace cipherpulse::decryptor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kSmtpUser = "alerts";
constexpr const char* kSmtpPassword = "correct-horse-7f3a";
constexpr const char* kWebhookToken = "tok-4b1d9e2c";

// --------------------------------------------------------------------------------------
// Processes

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::vector<char*> argv_of(std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    return argv;
}

// run executes `args` (found on PATH), stdout to `stdout_path` and stderr to `stderr_path`,
// and returns its exit status (-1 when it could not run or did not exit normally).
int run(std::vector<std::string> args, const fs::path& stdout_path, const fs::path& stderr_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    auto argv = argv_of(args);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        return -1;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

// ChildProcess is a server started for one test: it waits for the "READY <port>" line and
// is stopped (SIGTERM, then SIGKILL after 5 s) and reaped by its destructor.
class ChildProcess {
  public:
    ChildProcess(std::vector<std::string> args, fs::path stderr_path)
        : stderr_path_(std::move(stderr_path)) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return;
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_addopen(&actions, 2, stderr_path_.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
        auto argv = argv_of(args);
        if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
            pid_ = -1;
        }
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        stdout_fd_ = fds[0];
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess() { stop(); }

    // wait_ready returns the port from the child's "READY <port>" line, or nothing if the
    // child exits or stays silent for `timeout`.
    std::optional<int> wait_ready(std::chrono::milliseconds timeout = 15s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string buffer;
        while (pid_ > 0 && stdout_fd_ >= 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) {
                return std::nullopt;
            }
            pollfd pfd{stdout_fd_, POLLIN, 0};
            if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
                continue;
            }
            char chunk[256];
            const ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
            if (n <= 0) {
                return std::nullopt;  // the child closed stdout: it died
            }
            buffer.append(chunk, static_cast<std::size_t>(n));
            std::smatch match;
            static const std::regex kReady(R"((^|\n)READY (\d+)\n)");
            if (std::regex_search(buffer, match, kReady)) {
                return std::stoi(match[2]);
            }
        }
        return std::nullopt;
    }

    // stop ends the child and returns its exit status (-1 if killed or never started).
    int stop() {
        if (stdout_fd_ >= 0) {
            close(stdout_fd_);
            stdout_fd_ = -1;
        }
        if (pid_ <= 0) {
            return exit_status_;
        }
        kill(pid_, SIGTERM);
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        pid_t done = 0;
        while ((done = waitpid(pid_, &status, WNOHANG)) == 0 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(20ms);
        }
        if (done == 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
            status = -1;
        }
        pid_ = -1;
        exit_status_ = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_status_;
    }

    std::string diagnostics() const { return read_file(stderr_path_); }

  private:
    pid_t pid_ = -1;
    int stdout_fd_ = -1;
    int exit_status_ = -1;
    fs::path stderr_path_;
};

// closed_port returns a loopback port nothing listens on (bound, then released).
int closed_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

std::vector<fs::path> files_with_extension(const fs::path& dir, const std::string& ext) {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() == ext) {
            out.push_back(entry.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// --------------------------------------------------------------------------------------
// The throwaway PKI and the Python e-mail parser, made once for the whole test program.

// Reads an .eml with Python's email package (policy.default: RFC 2047 decoded, transfer
// encodings undone) and prints what the tests check as JSON.
constexpr const char* kParseEmail = R"PY(
import email, email.policy, email.utils, json, sys
raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
def addresses(name):
    value = msg[name]
    return [[a.display_name, a.addr_spec] for a in value.addresses] if value is not None else []
# MIME text is canonically CRLF; compare it as a mail client shows it, with "\n".
parts = [{"content_type": p.get_content_type(), "charset": p.get_content_charset(),
          "cte": p.get("Content-Transfer-Encoding"),
          "content": p.get_content().replace("\r\n", "\n"),
          "defects": [repr(d) for d in p.defects]} for p in msg.iter_parts()]
date = email.utils.parsedate_to_datetime(msg["Date"])
print(json.dumps({
    "headers": {k.lower(): str(v) for k, v in msg.items()},
    "header_names": [k.lower() for k in msg.keys()],
    "defects": [repr(d) for d in msg.defects],
    "content_type": msg.get_content_type(),
    "boundary": msg.get_boundary(),
    "date_epoch": date.timestamp(),
    "date_utcoffset_s": date.utcoffset().total_seconds(),
    "from": addresses("From"),
    "to": addresses("To"),
    "parts": parts,
}))
)PY";

class Pki {
  public:
    Pki() {
        ok_ = make_ca("ca") && make_ca("other-ca") && make_server_cert();
        write_file(dir_ / "parse_email.py", kParseEmail);
        write_file(dir_ / "smtp.pass", std::string(kSmtpPassword) + "\n");
        write_file(dir_ / "webhook.token", std::string(kWebhookToken) + "\n");
    }
    bool ok() const { return ok_; }
    fs::path path(const std::string& name) const { return dir_ / name; }
    const std::string& error() const { return error_; }

  private:
    bool openssl(std::vector<std::string> args) {
        args.insert(args.begin(), "openssl");
        if (run(args, dir_ / "openssl.out", dir_ / "openssl.err") != 0) {
            error_ = "openssl " + args[1] + " failed: " + read_file(dir_ / "openssl.err");
            return false;
        }
        return true;
    }
    bool make_ca(const std::string& name) {
        return openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", path(name + ".key"), "-out", path(name + ".pem"),
                        "-days", "2", "-subj", "/CN=cipherpulse test " + name, "-addext",
                        "basicConstraints=critical,CA:TRUE", "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign"});
    }
    bool make_server_cert() {
        write_file(path("server.ext"),
                   "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "basicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n");
        return openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", path("server.key"), "-out", path("server.csr"),
                        "-subj", "/CN=localhost"}) &&
               openssl({"x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey",
                        path("ca.key"), "-set_serial", "2", "-days", "2", "-out",
                        path("server.pem"), "-extfile", path("server.ext")});
    }

    testing::TempDir temp_;
    fs::path dir_ = temp_.path();
    bool ok_ = false;
    std::string error_;
};

Pki& pki() {
    static Pki instance;  // removed with its TempDir when the test program exits
    return instance;
}

// parse_email runs Python's e-mail parser on `eml`.
json parse_email(const fs::path& eml) {
    testing::TempDir scratch;
    const int rc = run({kPython, pki().path("parse_email.py"), eml}, scratch / "out.json",
                       scratch / "err.txt");
    EXPECT_EQ(rc, 0) << read_file(scratch / "err.txt");
    return rc == 0 ? json::parse(read_file(scratch / "out.json")) : json::object();
}

json parse_email_text(const std::string& message) {
    testing::TempDir scratch;
    write_file(scratch / "m.eml", message);
    return parse_email(scratch / "m.eml");
}

// --------------------------------------------------------------------------------------
// Sample data

constexpr std::int64_t kWindowStart = 1739455380000;  // Thu, 13 Feb 2025 14:03:00 UTC
constexpr std::int64_t kNow = 1739455385000;          // Thu, 13 Feb 2025 14:03:05 UTC

AlertMessage sample_message(const std::string& id = "a17-raised") {
    AlertMessage m;
    m.id = id;
    m.kind = AlertEvent::Kind::kRaised;
    m.patient = "Bed 12";
    m.rule = "tachycardia";
    m.severity = Severity::kCritical;
    m.window_start_ms = kWindowStart;
    m.window_length_ms = 60'000;
    m.summary = "mean heart rate 134 bpm above 120 bpm for 3 windows";
    m.figures = {{"mean heart rate", "134.2 bpm"}, {"share >= 120 bpm", "85 %"}};
    m.created_ms = kNow;
    return m;
}

SmtpConfig sample_smtp() {
    SmtpConfig c;
    c.url = "smtp://127.0.0.1:25";
    c.from = "cipherpulse <alerts@hospital.example>";
    c.to = {"ward7@hospital.example", "Dr. House <house@hospital.example>"};
    c.connect_timeout_s = 5;
    c.timeout_s = 10;
    return c;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find("\r\n", pos);
        if (end == std::string::npos) {
            end = text.size();
        }
        lines.push_back(text.substr(pos, end - pos));
        pos = end + 2;
    }
    return lines;
}

std::string header_block(const std::string& message) {
    return message.substr(0, message.find("\r\n\r\n"));
}

// --------------------------------------------------------------------------------------
// compose_email

TEST(ComposeEmailTest, HeadersPartsAndBodyParseWithAnIndependentParser) {
    ASSERT_TRUE(pki().ok()) << pki().error();
    const std::string message = compose_email(sample_smtp(), sample_message(), kNow);
    const json mail = parse_email_text(message);
    ASSERT_TRUE(mail.contains("headers"));

    EXPECT_TRUE(mail["defects"].empty()) << mail["defects"].dump();
    const json& h = mail["headers"];
    EXPECT_EQ(h["date"], "Thu, 13 Feb 2025 14:03:05 +0000");
    EXPECT_EQ(mail["date_epoch"].get<double>(), kNow / 1000);
    EXPECT_EQ(mail["date_utcoffset_s"].get<double>(), 0);
    EXPECT_EQ(mail["from"], json::parse(R"([["cipherpulse","alerts@hospital.example"]])"));
    EXPECT_EQ(mail["to"], json::parse(R"([["","ward7@hospital.example"],
                                          ["Dr. House","house@hospital.example"]])"));
    EXPECT_EQ(h["subject"], "[cipherpulse] CRITICAL tachycardia \u2014 Bed 12");
    EXPECT_TRUE(std::regex_match(h["message-id"].get<std::string>(),
                                 std::regex(R"(<a17-raised\.[0-9a-f]{16}@cipherpulse>)")))
        << h["message-id"];
    EXPECT_EQ(h["mime-version"], "1.0");
    EXPECT_EQ(h["auto-submitted"], "auto-generated");
    EXPECT_EQ(h["x-cipherpulse-alert"], "a17-raised");
    EXPECT_EQ(mail["content_type"], "multipart/alternative");

    ASSERT_EQ(mail["parts"].size(), 2u);
    const json& text = mail["parts"][0];
    const json& html = mail["parts"][1];
    EXPECT_EQ(text["content_type"], "text/plain");
    EXPECT_EQ(html["content_type"], "text/html");
    for (const json& part : mail["parts"]) {
        EXPECT_EQ(part["charset"], "utf-8");
        EXPECT_EQ(part["cte"], "quoted-printable");
        EXPECT_TRUE(part["defects"].empty()) << part["defects"].dump();
    }
    // The whole text part, so nothing else (no key, token, device or other patient) is in it.
    EXPECT_EQ(text["content"],
              "CRITICAL alert raised: tachycardia\n"
              "\n"
              "Patient:   Bed 12\n"
              "Rule:      tachycardia\n"
              "Severity:  critical\n"
              "Status:    raised\n"
              "Window:    2025-02-13 14:03:00 \u2013 14:04:00 UTC\n"
              "Summary:   mean heart rate 134 bpm above 120 bpm for 3 windows\n"
              "\n"
              "Figures:\n"
              "  mean heart rate: 134.2 bpm\n"
              "  share >= 120 bpm: 85 %\n");
    const std::string html_text = html["content"];
    for (const char* expected :
         {"<td>Bed 12</td>", "<td>tachycardia</td>", "<td>critical</td>", "<td>raised</td>",
          "<td>mean heart rate</td><td>134.2 bpm</td>", "<td>share &gt;= 120 bpm</td>",
          "<td>85 %</td>", "2025-02-13 14:03:00 \u2013 14:04:00 UTC"}) {
        EXPECT_NE(html_text.find(expected), std::string::npos) << expected;
    }
    // The boundary delimits exactly the two parts and the end.
    const std::string boundary = mail["boundary"];
    std::size_t count = 0;
    for (auto at = message.find("--" + boundary); at != std::string::npos;
         at = message.find("--" + boundary, at + 1)) {
        ++count;
    }
    EXPECT_EQ(count, 3u);
}

TEST(ComposeEmailTest, CrlfLineEndsAndBoundedLines) {
    AlertMessage m = sample_message();
    m.summary = std::string(3000, 'x') + " \xC3\xA9t\xC3\xA9 " + std::string(1500, '=');
    m.figures.push_back({"long", std::string(1200, 'y')});
    const std::string message = compose_email(sample_smtp(), m, kNow);

    for (std::size_t i = 0; i < message.size(); ++i) {
        if (message[i] == '\n') {
            ASSERT_TRUE(i > 0 && message[i - 1] == '\r') << "bare LF at " << i;
        }
        if (message[i] == '\r') {
            ASSERT_TRUE(i + 1 < message.size() && message[i + 1] == '\n') << "bare CR at " << i;
        }
        ASSERT_LT(static_cast<unsigned char>(message[i]), 0x80) << "8-bit octet at " << i;
    }
    ASSERT_TRUE(message.ends_with("\r\n"));
    const std::size_t body_start = message.find("\r\n\r\n");
    for (const std::string& line : lines_of(message.substr(0, body_start))) {
        EXPECT_LE(line.size(), 78u) << line;
    }
    for (const std::string& line : lines_of(message.substr(body_start + 4))) {
        EXPECT_LE(line.size(), 76u) << line;  // quoted-printable's limit, below 998
    }
    // Wrapping and encoding lose nothing.
    const json mail = parse_email_text(message);
    ASSERT_EQ(mail["parts"].size(), 2u);
    const std::string text = mail["parts"][0]["content"];
    EXPECT_NE(text.find("Summary:   " + m.summary + "\n"), std::string::npos);
    EXPECT_NE(text.find("  long: " + std::string(1200, 'y') + "\n"), std::string::npos);
}

TEST(ComposeEmailTest, HtmlEscapesEverythingFromConfigurationAndData) {
    AlertMessage m = sample_message();
    m.patient = "<script>alert('x')</script> & \"Bed\"";
    m.summary = "<b>bold</b>";
    m.figures = {{"<i>name</i>", "<img src=x onerror=alert(1)>"}};
    const json mail = parse_email_text(compose_email(sample_smtp(), m, kNow));
    ASSERT_EQ(mail["parts"].size(), 2u);
    const std::string html = mail["parts"][1]["content"];
    for (const char* forbidden : {"<script", "<b>", "<i>", "<img"}) {
        EXPECT_EQ(html.find(forbidden), std::string::npos) << forbidden;
    }
    EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Bed&quot;"),
              std::string::npos);
    EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
    // The text part says it as it is: plain text cannot run anything.
    const std::string text = mail["parts"][0]["content"];
    EXPECT_NE(text.find("Patient:   <script>alert('x')</script> & \"Bed\""), std::string::npos);
}

TEST(ComposeEmailTest, NonAsciiAliasIsAnRfc2047EncodedWord) {
    AlertMessage m = sample_message();
    m.patient =
        "Zimmer 12 \xE2\x80\x93 J\xC3\xBCrgen M\xC3\xBCller-L\xC3\xBC"
        "denscheid";
    const std::string message = compose_email(sample_smtp(), m, kNow);
    const std::string headers = header_block(message);
    const std::regex subject_line(R"(\r\nSubject: (=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=(\r\n )?)+\r\n)");
    EXPECT_TRUE(std::regex_search(headers + "\r\n", subject_line)) << headers;

    const json mail = parse_email_text(message);
    EXPECT_TRUE(mail["defects"].empty()) << mail["defects"].dump();
    EXPECT_EQ(mail["headers"]["subject"], "[cipherpulse] CRITICAL tachycardia \u2014 " + m.patient);
    EXPECT_NE(mail["parts"][0]["content"].get<std::string>().find("Patient:   " + m.patient),
              std::string::npos);
}

TEST(ComposeEmailTest, LineBreaksInDataCannotInjectHeaders) {
    AlertMessage m = sample_message();
    m.patient = "Bed 12\r\nBcc: attacker@evil.example\r\n\r\nforged body";
    m.id = "a1\r\nX-Injected: 1";
    SmtpConfig config = sample_smtp();
    config.from = "cipherpulse\r\nBcc: x@evil.example <alerts@hospital.example>";
    const std::string message = compose_email(config, m, kNow);
    const json mail = parse_email_text(message);
    for (const auto& name : mail["header_names"]) {
        EXPECT_NE(name, "bcc");
        EXPECT_NE(name, "x-injected");
    }
    EXPECT_EQ(mail["headers"]["subject"],
              "[cipherpulse] CRITICAL tachycardia \u2014 Bed 12  Bcc: attacker@evil.example    "
              "forged body");
}

TEST(ComposeEmailTest, ClearedAlertSubjectAndStatus) {
    AlertMessage m = sample_message("a17-cleared");
    m.kind = AlertEvent::Kind::kCleared;
    const json mail = parse_email_text(compose_email(sample_smtp(), m, kNow));
    EXPECT_EQ(mail["headers"]["subject"], "[cipherpulse] cleared: tachycardia \u2014 Bed 12");
    const std::string text = mail["parts"][0]["content"];
    EXPECT_TRUE(text.starts_with("Alert cleared: tachycardia\n")) << text;
    EXPECT_NE(text.find("Status:    cleared\n"), std::string::npos);
}

std::string header_value(const std::string& message, const std::string& name) {
    const std::regex re("\r\n" + name + ": ([^\r]*)\r\n");
    std::smatch match;
    const std::string headers = "\r\n" + header_block(message) + "\r\n";
    return std::regex_search(headers, match, re) ? match[1].str() : "";
}

TEST(ComposeEmailTest, MessageIdIsStableForAnAlertAndDistinctOtherwise) {
    const SmtpConfig config = sample_smtp();
    const std::string first = compose_email(config, sample_message("a17-raised"), kNow);
    const std::string again = compose_email(config, sample_message("a17-raised"), kNow + 60'000);
    const std::string other = compose_email(config, sample_message("a18-raised"), kNow);
    SmtpConfig elsewhere = config;
    elsewhere.from = "alerts@clinic.example";
    const std::string other_site = compose_email(elsewhere, sample_message("a17-raised"), kNow);

    const std::string id = header_value(first, "Message-ID");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(header_value(again, "Message-ID"), id);
    EXPECT_NE(header_value(again, "Date"), header_value(first, "Date"));
    EXPECT_NE(header_value(other, "Message-ID"), id);
    EXPECT_NE(header_value(other_site, "Message-ID"), id);
    // Everything but the Date is a function of the configuration and the alert.
    EXPECT_EQ(compose_email(config, sample_message(), kNow), first);
}

// --------------------------------------------------------------------------------------
// sms_text, sms_json

TEST(SmsTest, TextIsShortAndSaysWhatMatters) {
    AlertMessage m = sample_message();
    m.figures = {{"mean heart rate", "134.2 bpm"}};
    EXPECT_EQ(sms_text(m),
              "CRITICAL tachycardia: Bed 12, mean heart rate 134.2 bpm, 14:03-14:04 UTC");
    m.kind = AlertEvent::Kind::kCleared;
    EXPECT_EQ(sms_text(m),
              "CLEARED tachycardia: Bed 12, mean heart rate 134.2 bpm, 14:03-14:04 UTC");
    m.kind = AlertEvent::Kind::kRaised;
    m.figures.clear();
    m.severity = Severity::kWarning;
    m.window_length_ms = 3600'000;
    EXPECT_EQ(sms_text(m),
              "WARNING tachycardia: Bed 12, mean heart rate 134 bpm above 120 bpm for 3 windows, "
              "14:03-15:03 UTC");
}

TEST(SmsTest, LongTextIsCutSanelyAtOneHundredSixtyBytes) {
    AlertMessage m = sample_message();
    for (int i = 0; i < 10; ++i) {
        m.figures.push_back({"figure " + std::to_string(i), "12.5 units"});
    }
    const std::string many = sms_text(m);
    EXPECT_LE(many.size(), 160u);
    EXPECT_TRUE(many.starts_with("CRITICAL tachycardia: Bed 12, mean heart rate 134.2 bpm, "))
        << many;
    EXPECT_TRUE(many.ends_with(", 14:03-14:04 UTC")) << many;
    EXPECT_EQ(many.find("figure 9"), std::string::npos);  // dropped whole, not cut

    std::string alias;
    for (int i = 0; i < 100; ++i) {
        alias += "\xC3\xBC";  // ü: a cut must not split it
    }
    m.patient = alias;
    const std::string long_alias = sms_text(m);
    EXPECT_LE(long_alias.size(), 160u);
    EXPECT_TRUE(long_alias.ends_with("..., 14:03-14:04 UTC")) << long_alias;
    // Valid UTF-8 throughout, or nlohmann's strict parser would throw.
    EXPECT_NO_THROW({
        const json parsed = json::parse(json(long_alias).dump());
        EXPECT_EQ(parsed, long_alias);
    });
    WebhookConfig config;
    EXPECT_EQ(json::parse(sms_json(config, m))["text"], long_alias);
}

TEST(SmsTest, JsonCarriesTheDocumentedFields) {
    WebhookConfig config;
    config.to = {"+41790000001", "+41790000002"};
    config.bearer_token = kWebhookToken;
    const json body = json::parse(sms_json(config, sample_message()));
    EXPECT_EQ(body["id"], "a17-raised");
    EXPECT_EQ(body["to"], json::parse(R"(["+41790000001","+41790000002"])"));
    EXPECT_EQ(body["text"], sms_text(sample_message()));
    EXPECT_EQ(body["patient"], "Bed 12");
    EXPECT_EQ(body["rule"], "tachycardia");
    EXPECT_EQ(body["severity"], "critical");
    EXPECT_EQ(body["kind"], "raised");
    EXPECT_EQ(body["window_start"], "2025-02-13T14:03:00Z");
    EXPECT_EQ(body["window_length_s"], 60);
    EXPECT_EQ(body.size(), 9u);
    EXPECT_EQ(sms_json(config, sample_message()).find(kWebhookToken), std::string::npos);
}

// --------------------------------------------------------------------------------------
// RetryPolicy

TEST(RetryPolicyTest, DoublesFromTheInitialBackoffUpToTheCap) {
    const RetryPolicy policy;
    EXPECT_EQ(policy.delay_after(1), 2000);
    EXPECT_EQ(policy.delay_after(2), 4000);
    EXPECT_EQ(policy.delay_after(3), 8000);
    EXPECT_EQ(policy.delay_after(8), 256'000);
    EXPECT_EQ(policy.delay_after(9), 300'000);
    EXPECT_EQ(policy.delay_after(64), 300'000);
    EXPECT_EQ(policy.delay_after(1000), 300'000);
    EXPECT_EQ(policy.delay_after(INT_MAX), 300'000);
    EXPECT_EQ(policy.delay_after(0), 0);
    EXPECT_EQ(policy.delay_after(-3), 0);
}

TEST(RetryPolicyTest, NoOverflowNearTheLimits) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    RetryPolicy policy{.max_attempts = 100, .initial_backoff_ms = 1, .max_backoff_ms = kMax};
    EXPECT_EQ(policy.delay_after(62), std::int64_t{1} << 61);
    EXPECT_EQ(policy.delay_after(63), std::int64_t{1} << 62);
    EXPECT_EQ(policy.delay_after(64), kMax);
    EXPECT_EQ(policy.delay_after(INT_MAX), kMax);
    policy.initial_backoff_ms = 3'000'000'000'000'000'000;
    EXPECT_EQ(policy.delay_after(2), 6'000'000'000'000'000'000);
    EXPECT_EQ(policy.delay_after(3), kMax);
    policy = RetryPolicy{.max_attempts = 3, .initial_backoff_ms = 5000, .max_backoff_ms = 1000};
    EXPECT_EQ(policy.delay_after(1), 1000);
}

// --------------------------------------------------------------------------------------
// E-mail to a real SMTP server

struct SmtpServerOptions {
    std::string mode = "starttls";
    bool require_auth = true;
    int fail_first = 0;
    std::string refuse_rcpt = {};
};

class SmtpDeliveryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(pki().ok()) << pki().error();
        fs::create_directory(out_);
    }

    // start runs tests/fixtures/smtp_server.py and returns its port.
    int start(const SmtpServerOptions& options) {
        std::vector<std::string> args = {
            kPython,        (testing::repo_root() / "tests/fixtures/smtp_server.py").string(),
            "--port",       "0",
            "--mode",       options.mode,
            "--out",        out_.string(),
            "--fail-first", std::to_string(options.fail_first)};
        if (options.mode != "plain") {
            args.insert(args.end(), {"--cert", pki().path("server.pem").string(), "--key",
                                     pki().path("server.key").string()});
        }
        if (!options.refuse_rcpt.empty()) {
            args.insert(args.end(), {"--refuse-rcpt", options.refuse_rcpt});
        }
        if (options.require_auth) {
            args.insert(args.end(), {"--require-auth", "--user", kSmtpUser, "--password-file",
                                     pki().path("smtp.pass").string()});
        }
        server_ = std::make_unique<ChildProcess>(args, temp_ / "smtp.err");
        const auto port = server_->wait_ready();
        EXPECT_TRUE(port.has_value()) << "SMTP fixture did not start (is python3-aiosmtpd "
                                         "installed?): "
                                      << server_->diagnostics();
        return port.value_or(0);
    }

    SmtpConfig config(const std::string& url) const {
        SmtpConfig c = sample_smtp();
        c.url = url;
        c.username = kSmtpUser;
        c.password = kSmtpPassword;
        c.ca_file = pki().path("ca.pem").string();
        return c;
    }

    std::vector<fs::path> received() const { return files_with_extension(out_, ".eml"); }

    void TearDown() override {
        if (server_) {
            EXPECT_EQ(server_->stop(), 0)
                << "SMTP fixture did not exit cleanly on SIGTERM: " << server_->diagnostics();
        }
    }

    testing::TempDir temp_;
    fs::path out_ = temp_ / "out";
    std::unique_ptr<ChildProcess> server_;
};

void expect_no_secret(const DeliveryResult& result) {
    EXPECT_EQ(result.detail.find(kSmtpPassword), std::string::npos) << result.detail;
    EXPECT_EQ(result.detail.find(kWebhookToken), std::string::npos) << result.detail;
}

TEST_F(SmtpDeliveryTest, DeliversOverStarttlsWithAuth) {
    const int port = start({});
    ASSERT_NE(port, 0);
    const SmtpConfig cfg = config("smtp://localhost:" + std::to_string(port));
    auto notifier = make_email_notifier(cfg);
    EXPECT_EQ(notifier->channel(), "email");
    const std::int64_t before = std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    const DeliveryResult result = notifier->deliver(sample_message());
    ASSERT_TRUE(result.ok) << result.detail << "\n" << server_->diagnostics();
    expect_no_secret(result);

    ASSERT_EQ(received().size(), 1u);
    const json envelope = json::parse(read_file(out_ / "1.json"));
    EXPECT_EQ(envelope["tls"], true);
    EXPECT_EQ(envelope["auth"], true);
    EXPECT_EQ(envelope["auth_user"], kSmtpUser);
    EXPECT_EQ(envelope["mail_from"], "alerts@hospital.example");
    EXPECT_EQ(envelope["rcpt_tos"],
              json::parse(R"(["ward7@hospital.example","house@hospital.example"])"));

    const json mail = parse_email(out_ / "1.eml");
    EXPECT_TRUE(mail["defects"].empty()) << mail["defects"].dump();
    EXPECT_EQ(mail["headers"]["subject"], "[cipherpulse] CRITICAL tachycardia \u2014 Bed 12");
    EXPECT_EQ(mail["from"], json::parse(R"([["cipherpulse","alerts@hospital.example"]])"));
    EXPECT_EQ(mail["to"].size(), 2u);
    EXPECT_NEAR(mail["date_epoch"].get<double>(), static_cast<double>(before), 120.0);
    // A redelivery of the same alert carries the same Message-ID.
    const std::string composed = compose_email(cfg, sample_message(), kNow);
    EXPECT_EQ(mail["headers"]["message-id"], header_value(composed, "Message-ID"));
    ASSERT_EQ(mail["parts"].size(), 2u);
    EXPECT_EQ(mail["parts"][0]["content_type"], "text/plain");
    EXPECT_EQ(mail["parts"][1]["content_type"], "text/html");
    for (const json& part : mail["parts"]) {
        const std::string content = part["content"];
        EXPECT_NE(content.find("134.2 bpm"), std::string::npos);
        EXPECT_NE(content.find("85 %"), std::string::npos);
        EXPECT_NE(content.find("Bed 12"), std::string::npos);
    }
}

TEST_F(SmtpDeliveryTest, DeliversOverImplicitTls) {
    const int port = start({.mode = "implicit"});
    ASSERT_NE(port, 0);
    SmtpConfig cfg = config("smtps://127.0.0.1:" + std::to_string(port));
    cfg.tls = "implicit";
    const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
    ASSERT_TRUE(result.ok) << result.detail << "\n" << server_->diagnostics();
    ASSERT_EQ(received().size(), 1u);
    const json envelope = json::parse(read_file(out_ / "1.json"));
    EXPECT_EQ(envelope["tls"], true);
    EXPECT_EQ(envelope["auth"], true);
    EXPECT_EQ(envelope["mode"], "implicit");
}

TEST_F(SmtpDeliveryTest, WrongPasswordIsPermanent) {
    const int port = start({});
    ASSERT_NE(port, 0);
    SmtpConfig cfg = config("smtp://localhost:" + std::to_string(port));
    cfg.password = "wrong-password-91";
    const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent) << result.detail;
    EXPECT_NE(result.detail.find("login denied"), std::string::npos) << result.detail;
    EXPECT_EQ(result.detail.find("wrong-password-91"), std::string::npos);
    EXPECT_TRUE(received().empty());
}

TEST_F(SmtpDeliveryTest, MailWithoutAuthIsRefusedPermanently) {
    const int port = start({});
    ASSERT_NE(port, 0);
    SmtpConfig cfg = config("smtp://localhost:" + std::to_string(port));
    cfg.username.clear();
    cfg.password.clear();
    const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent) << result.detail;
    EXPECT_NE(result.detail.find("SMTP 530"), std::string::npos) << result.detail;
    EXPECT_TRUE(received().empty());
}

TEST_F(SmtpDeliveryTest, UntrustedServerCertificateIsPermanentAndSendsNothing) {
    const int port = start({});
    ASSERT_NE(port, 0);
    SmtpConfig cfg = config("smtp://localhost:" + std::to_string(port));
    cfg.ca_file.clear();  // the system's CAs do not know our throwaway CA
    const DeliveryResult system_cas = make_email_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(system_cas.ok);
    EXPECT_TRUE(system_cas.permanent) << system_cas.detail;
    cfg.ca_file = pki().path("other-ca.pem").string();
    const DeliveryResult other_ca = make_email_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(other_ca.ok);
    EXPECT_TRUE(other_ca.permanent) << other_ca.detail;
    EXPECT_NE(other_ca.detail.find("certificate"), std::string::npos) << other_ca.detail;
    expect_no_secret(other_ca);
    EXPECT_TRUE(received().empty());
}

TEST_F(SmtpDeliveryTest, ServerWithoutStarttlsIsRefusedPermanently) {
    const int port = start({.mode = "plain", .require_auth = false});
    ASSERT_NE(port, 0);
    const SmtpConfig cfg = config("smtp://127.0.0.1:" + std::to_string(port));  // starttls
    const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent) << result.detail;
    EXPECT_TRUE(received().empty());
}

TEST_F(SmtpDeliveryTest, RecipientRefusedForGoodIsPermanent) {
    const int port = start({.refuse_rcpt = "house@hospital.example"});
    ASSERT_NE(port, 0);
    const DeliveryResult result =
        make_email_notifier(config("smtp://localhost:" + std::to_string(port)))
            ->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent) << result.detail;
    EXPECT_NE(result.detail.find("SMTP 550"), std::string::npos) << result.detail;
    EXPECT_TRUE(received().empty());
}

TEST_F(SmtpDeliveryTest, TemporaryRefusalIsRetryableThenDelivered) {
    const int port = start({.fail_first = 1});
    ASSERT_NE(port, 0);
    auto notifier = make_email_notifier(config("smtp://localhost:" + std::to_string(port)));
    const DeliveryResult first = notifier->deliver(sample_message());
    EXPECT_FALSE(first.ok);
    EXPECT_FALSE(first.permanent) << first.detail;
    EXPECT_NE(first.detail.find("SMTP 451"), std::string::npos) << first.detail;
    const DeliveryResult second = notifier->deliver(sample_message());
    EXPECT_TRUE(second.ok) << second.detail;
    EXPECT_EQ(received().size(), 1u);
}

TEST_F(SmtpDeliveryTest, PlainToLoopbackWorksWhenTlsIsNone) {
    const int port = start({.mode = "plain", .require_auth = false});
    ASSERT_NE(port, 0);
    SmtpConfig cfg = config("smtp://127.0.0.1:" + std::to_string(port));
    cfg.tls = "none";
    cfg.username.clear();
    cfg.password.clear();
    const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
    ASSERT_TRUE(result.ok) << result.detail << "\n" << server_->diagnostics();
    ASSERT_EQ(received().size(), 1u);
    EXPECT_EQ(json::parse(read_file(out_ / "1.json"))["tls"], false);
}

TEST_F(SmtpDeliveryTest, TlsNoneToANonLoopbackHostIsRefusedWithoutConnecting) {
    // On Linux a connection to 0.0.0.0 reaches the local host, so this server would take
    // the message if the notifier connected at all: nothing received proves it did not.
    const int port = start({.mode = "plain", .require_auth = false});
    ASSERT_NE(port, 0);
    for (const std::string& url :
         {"smtp://0.0.0.0:" + std::to_string(port), std::string("smtp://mail.hospital.example"),
          std::string("smtp://10.0.0.25:25")}) {
        SmtpConfig cfg = config(url);
        cfg.tls = "none";
        const auto start_time = std::chrono::steady_clock::now();
        const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
        EXPECT_LT(std::chrono::steady_clock::now() - start_time, 1s);
        EXPECT_FALSE(result.ok) << url;
        EXPECT_TRUE(result.permanent) << url;
        EXPECT_NE(result.detail.find("loopback"), std::string::npos) << result.detail;
    }
    EXPECT_TRUE(received().empty());
}

TEST(SmtpConfigTest, InconsistentSettingsArePermanentFailures) {
    SmtpConfig cfg = sample_smtp();
    cfg.url = "smtps://127.0.0.1:465";  // tls = starttls wants smtp://
    EXPECT_TRUE(make_email_notifier(cfg)->deliver(sample_message()).permanent);
    cfg.url = "smtp://127.0.0.1:25";
    cfg.tls = "implicit";  // wants smtps://
    EXPECT_TRUE(make_email_notifier(cfg)->deliver(sample_message()).permanent);
    cfg.tls = "opportunistic";
    EXPECT_TRUE(make_email_notifier(cfg)->deliver(sample_message()).permanent);
    cfg.tls = "starttls";
    cfg.to.clear();
    EXPECT_TRUE(make_email_notifier(cfg)->deliver(sample_message()).permanent);
    cfg.to = {"ward7@hospital.example>\r\nRCPT TO:<x@evil.example"};
    EXPECT_TRUE(make_email_notifier(cfg)->deliver(sample_message()).permanent);
}

TEST(SmtpConfigTest, ServerDownIsRetryable) {
    SmtpConfig cfg = sample_smtp();
    cfg.url = "smtp://127.0.0.1:" + std::to_string(closed_port());
    const DeliveryResult result = make_email_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_FALSE(result.permanent) << result.detail;
    EXPECT_NE(result.detail.find("connection failed"), std::string::npos) << result.detail;
}

TEST_F(SmtpDeliveryTest, FixtureExitsCleanlyOnSigterm) {
    ASSERT_NE(start({}), 0);
    EXPECT_EQ(server_->stop(), 0) << server_->diagnostics();
}

// --------------------------------------------------------------------------------------
// SMS to a real webhook receiver

struct WebhookOptions {
    bool tls = false;
    bool token = true;
    int fail_first = 0;
    int status = 0;
};

class WebhookDeliveryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(pki().ok()) << pki().error();
        fs::create_directory(out_);
    }

    // start runs tests/fixtures/webhook_receiver.py and returns the URL to post to.
    std::string start(const WebhookOptions& options) {
        std::vector<std::string> args = {
            kPython,        (testing::repo_root() / "tests/fixtures/webhook_receiver.py").string(),
            "--port",       "0",
            "--out",        out_.string(),
            "--fail-first", std::to_string(options.fail_first)};
        if (options.tls) {
            args.insert(args.end(), {"--cert", pki().path("server.pem").string(), "--key",
                                     pki().path("server.key").string()});
        }
        if (options.token) {
            args.insert(args.end(), {"--token-file", pki().path("webhook.token").string()});
        }
        if (options.status != 0) {
            args.insert(args.end(), {"--status", std::to_string(options.status)});
        }
        server_ = std::make_unique<ChildProcess>(args, temp_ / "webhook.err");
        const auto port = server_->wait_ready();
        EXPECT_TRUE(port.has_value()) << server_->diagnostics();
        return std::string(options.tls ? "https://localhost:" : "http://127.0.0.1:") +
               std::to_string(port.value_or(0)) + "/v1/send";
    }

    WebhookConfig config(const std::string& url) const {
        WebhookConfig c;
        c.url = url;
        c.bearer_token = kWebhookToken;
        c.headers = {{"X-Gateway-Account", "ward-7"}, {"X-Empty", ""}};
        c.ca_file = pki().path("ca.pem").string();
        c.to = {"+41790000001"};
        c.connect_timeout_s = 5;
        c.timeout_s = 10;
        return c;
    }

    std::vector<json> requests() const {
        std::vector<json> out;
        for (const fs::path& p : files_with_extension(out_, ".json")) {
            out.push_back(json::parse(read_file(p)));
        }
        std::sort(out.begin(), out.end(),
                  [](const json& a, const json& b) { return a["n"] < b["n"]; });
        return out;
    }

    void TearDown() override {
        if (server_) {
            EXPECT_EQ(server_->stop(), 0) << server_->diagnostics();
        }
    }

    testing::TempDir temp_;
    fs::path out_ = temp_ / "out";
    std::unique_ptr<ChildProcess> server_;
};

// header returns the value of header `name` (case-insensitive) in a recorded request.
std::optional<std::string> header(const json& request, std::string name) {
    const auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return s;
    };
    for (const auto& pair : request["headers"]) {
        if (lower(pair[0].get<std::string>()) == lower(name)) {
            return pair[1].get<std::string>();
        }
    }
    return std::nullopt;
}

TEST_F(WebhookDeliveryTest, PostsJsonWithBearerExtraHeadersAndIdempotencyKey) {
    const std::string url = start({});
    const WebhookConfig cfg = config(url);
    auto notifier = make_sms_notifier(cfg);
    EXPECT_EQ(notifier->channel(), "sms");
    const DeliveryResult result = notifier->deliver(sample_message());
    ASSERT_TRUE(result.ok) << result.detail << "\n" << server_->diagnostics();
    EXPECT_EQ(result.detail, "HTTP 200");

    const auto got = requests();
    ASSERT_EQ(got.size(), 1u);
    const json& r = got[0];
    EXPECT_EQ(r["path"], "/v1/send");
    EXPECT_EQ(header(r, "Authorization"), std::string("Bearer ") + kWebhookToken);
    EXPECT_EQ(header(r, "Content-Type"), "application/json");
    EXPECT_EQ(header(r, "Idempotency-Key"), "a17-raised");
    EXPECT_EQ(header(r, "X-Gateway-Account"), "ward-7");
    EXPECT_EQ(header(r, "X-Empty"), "");
    EXPECT_EQ(r["body"], json::parse(sms_json(cfg, sample_message())));
    EXPECT_EQ(r["body"]["text"],
              "CRITICAL tachycardia: Bed 12, mean heart rate 134.2 bpm, share >= 120 bpm 85 %, "
              "14:03-14:04 UTC");
}

TEST_F(WebhookDeliveryTest, HttpsWithTheConfiguredCa) {
    const std::string url = start({.tls = true});
    const DeliveryResult result = make_sms_notifier(config(url))->deliver(sample_message());
    ASSERT_TRUE(result.ok) << result.detail << "\n" << server_->diagnostics();
    const auto got = requests();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["tls"], true);
}

TEST_F(WebhookDeliveryTest, UntrustedCertificateIsPermanentAndSendsNothing) {
    const std::string url = start({.tls = true});
    WebhookConfig cfg = config(url);
    cfg.ca_file = pki().path("other-ca.pem").string();
    const DeliveryResult result = make_sms_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent) << result.detail;
    expect_no_secret(result);
    EXPECT_TRUE(requests().empty());
}

TEST_F(WebhookDeliveryTest, ServiceUnavailableIsRetryableThenDelivered) {
    const std::string url = start({.fail_first = 1});
    auto notifier = make_sms_notifier(config(url));
    const DeliveryResult first = notifier->deliver(sample_message());
    EXPECT_FALSE(first.ok);
    EXPECT_FALSE(first.permanent);
    EXPECT_EQ(first.detail, "HTTP 503");
    const DeliveryResult second = notifier->deliver(sample_message());
    EXPECT_TRUE(second.ok) << second.detail;
    const auto got = requests();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(header(got[0], "Idempotency-Key"), header(got[1], "Idempotency-Key"));
}

TEST_F(WebhookDeliveryTest, TooManyRequestsIsRetryable) {
    const std::string url = start({.status = 429});
    const DeliveryResult result = make_sms_notifier(config(url))->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_FALSE(result.permanent);
    EXPECT_EQ(result.detail, "HTTP 429");
}

TEST_F(WebhookDeliveryTest, BadRequestIsPermanent) {
    const std::string url = start({.status = 400});
    const DeliveryResult result = make_sms_notifier(config(url))->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent);
    EXPECT_EQ(result.detail, "HTTP 400");
}

TEST_F(WebhookDeliveryTest, WrongTokenIsPermanent) {
    const std::string url = start({});
    WebhookConfig cfg = config(url);
    cfg.bearer_token = "not-the-token";
    const DeliveryResult result = make_sms_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(result.permanent);
    EXPECT_EQ(result.detail, "HTTP 401");
}

TEST(WebhookConfigTest, ServerDownIsRetryable) {
    WebhookConfig cfg;
    cfg.url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/send";
    const DeliveryResult result = make_sms_notifier(cfg)->deliver(sample_message());
    EXPECT_FALSE(result.ok);
    EXPECT_FALSE(result.permanent) << result.detail;
}

TEST(WebhookConfigTest, PlainHttpToARemoteHostAndBadHeadersAreRefused) {
    WebhookConfig cfg;
    cfg.url = "http://sms.gateway.example/send";
    cfg.bearer_token = kWebhookToken;
    DeliveryResult result = make_sms_notifier(cfg)->deliver(sample_message());
    EXPECT_TRUE(result.permanent);
    EXPECT_NE(result.detail.find("https"), std::string::npos) << result.detail;

    cfg.url = "https://sms.gateway.example/send";
    cfg.headers = {{"X-Note", "a\r\nX-Injected: 1"}};
    EXPECT_TRUE(make_sms_notifier(cfg)->deliver(sample_message()).permanent);
    cfg.headers = {{"Authorization", "Basic abc"}};  // the bearer token sets it
    EXPECT_TRUE(make_sms_notifier(cfg)->deliver(sample_message()).permanent);
    cfg.headers = {{"Idempotency-Key", "other"}};
    EXPECT_TRUE(make_sms_notifier(cfg)->deliver(sample_message()).permanent);
    expect_no_secret(result);
}

}  // namespace
}  // namespace cipherpulse::decryptor

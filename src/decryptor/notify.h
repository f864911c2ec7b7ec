// Notifiers: how an alert reaches clinicians. One delivery attempt per call; the watch
// service keeps the outbox, retries with backoff and records every attempt.
//
// - E-mail through libcurl SMTP (STARTTLS or implicit TLS, AUTH, CA file, timeouts), as a
//   MIME multipart/alternative message (text and HTML) with Date, Message-ID, From, To and
//   Subject. The Message-ID derives from the alert's id, so a retried or repeated delivery
//   of the same alert carries the same Message-ID and can be recognised by the receiver.
// - SMS through an HTTP webhook: a JSON POST (URL, extra headers, bearer token from the
//   configuration), with an Idempotency-Key header equal to the alert's id.
//
// Messages say only what a clinician needs: patient as configured (alias or id), rule,
// severity, window, the figures that triggered it. Never a key, token or other patient.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "decryptor/rules.h"

namespace cipherpulse::decryptor {

// AlertMessage is what a notifier sends about one alert event.
struct AlertMessage {
    std::string id;  // stable and unique per alert event, e.g. "a17-raised"
    AlertEvent::Kind kind = AlertEvent::Kind::kRaised;
    std::string patient;  // display name (alias or id)
    std::string rule;
    Severity severity = Severity::kWarning;
    std::int64_t window_start_ms = 0;
    std::int64_t window_length_ms = 0;
    std::string summary;
    std::vector<Figure> figures;
    std::int64_t created_ms = 0;  // when the decryptor raised it (Unix ms)
};

// DeliveryResult is the outcome of one attempt. `permanent` marks a failure a retry
// cannot fix (e.g. authentication refused, 4xx from the webhook other than 408/429), so
// the caller stops retrying; `detail` is a short text for the delivery log (no secrets).
struct DeliveryResult {
    bool ok = false;
    bool permanent = false;
    std::string detail;
};

// SmtpConfig is the [notify.email] section.
struct SmtpConfig {
    std::string url;               // smtp://host:587 or smtps://host:465
    std::string tls = "starttls";  // starttls (required) | implicit (smtps) | none (loopback only)
    std::string username;          // empty: no AUTH
    std::string password;          // secret: read from password_file / password_env, never logged
    std::string ca_file;           // empty: the system's CAs
    std::string from;              // e.g. "cipherpulse <alerts@hospital.example>"
    std::vector<std::string> to;
    int connect_timeout_s = 10;
    int timeout_s = 30;
};

// WebhookConfig is the [notify.sms] section.
struct WebhookConfig {
    std::string url;  // https://gateway.example/send
    std::vector<std::pair<std::string, std::string>> headers;
    std::string bearer_token;  // secret: from token_file / token_env, never logged
    std::string ca_file;
    std::vector<std::string> to;  // recipients passed to the gateway
    int connect_timeout_s = 10;
    int timeout_s = 30;
};

// Notifier sends one alert over one channel. Implementations are safe to call from one
// thread at a time.
class Notifier {
  public:
    virtual ~Notifier() = default;
    virtual const std::string& channel() const = 0;  // "email", "sms"
    virtual DeliveryResult deliver(const AlertMessage& message) = 0;
};

// make_email_notifier / make_sms_notifier return the notifier of each channel. They never
// throw for the configuration's content: a configuration that cannot work (bad URL, tls
// and URL scheme that disagree, tls = "none" or http:// to a host that is not loopback,
// an invalid address or header) makes every deliver() return a permanent failure whose
// detail says why, without connecting. Each deliver() is one attempt on a fresh libcurl
// handle, bounded by connect_timeout_s and timeout_s; TLS peers are always verified.
// Outcomes: e-mail — login denied, certificate not accepted, no STARTTLS offered and any
// 5xx reply are permanent; 4xx replies, timeouts and connection failures are retryable.
// SMS — 2xx ok; 408, 429, 5xx and transport failures retryable; other statuses and
// certificate failures permanent. The notifier wipes its password / token when destroyed.
std::unique_ptr<Notifier> make_email_notifier(SmtpConfig config);
std::unique_ptr<Notifier> make_sms_notifier(WebhookConfig config);

// compose_email returns the full RFC 5322 message (CRLF line ends, headers then a
// multipart/alternative body with text/plain and text/html parts, UTF-8,
// quoted-printable or 8bit as appropriate, lines <= 998 octets). `now_ms` gives the Date.
std::string compose_email(const SmtpConfig& config, const AlertMessage& message,
                          std::int64_t now_ms);

// sms_text returns the short text (<= 160 characters when it can) the webhook carries, and
// sms_json the JSON body: {"id","to","text","patient","rule","severity","kind",
// "window_start","window_length_s"}.
std::string sms_text(const AlertMessage& message);
std::string sms_json(const WebhookConfig& config, const AlertMessage& message);

// RetryPolicy: attempt k (1-based) that failed is retried after
// min(initial_backoff_ms * 2^(k-1), max_backoff_ms), up to max_attempts attempts in all.
struct RetryPolicy {
    int max_attempts = 8;
    std::int64_t initial_backoff_ms = 2000;
    std::int64_t max_backoff_ms = 300'000;
    // delay_after returns the wait in ms after `failed_attempts` failures: 0 when
    // failed_attempts < 1, never more than max_backoff_ms, no overflow for any input.
    std::int64_t delay_after(int failed_attempts) const noexcept;
};

}  // namespace cipherpulse::decryptor

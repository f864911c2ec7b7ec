#include "server/admin_commands.h"

#include <pthread.h>
#include <signal.h>

#include <spdlog/spdlog.h>
#include <atomic>
#include <chrono>

#include <ostream>
#include <thread>

#include "cipherpulse/base64url.h"
#include "cipherpulse/ed25519.h"
#include "common/cli.h"
#include "server/app.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/ingest.h"
#include "server/schema.h"

namespace cipherpulse::server {
namespace {

constexpr int kExitAuditBroken = 3;

}  // namespace

store::Database open_existing_database(const ServerConfig& config) {
    store::OpenOptions options;
    options.create = false;
    options.synchronous = config.synchronous;
    store::Database db = store::Database::open(config.database, options);
    if (db.user_version() == 0) {
        throw std::runtime_error(config.database +
                                 " is not a cipherpulse database; run "
                                 "'cipherpulse-server init' first");
    }
    store::migrate(db, server_migrations());
    return db;
}

int run_init(const ServerConfig& config, std::ostream& out, std::ostream& err) {
    store::OpenOptions options;
    options.synchronous = config.synchronous;
    store::Database db = store::Database::open(config.database, options);
    store::migrate(db, server_migrations());
    store::Transaction tx(db);
    std::int64_t now = now_unix_ms();
    auto& st = db.prepare_cached(
        "SELECT COUNT(*) FROM tokens WHERE role = 'admin' AND revoked_ms IS NULL AND "
        "(expires_ms IS NULL OR expires_ms > ?)");
    st.bind(1, now);
    st.step();
    bool has_admin = st.column_int64(0) > 0;
    st.reset();
    if (has_admin) {
        tx.commit();
        err << "database " << config.database
            << " is ready; an admin token exists already (none printed)\n";
        return common::kExitOk;
    }
    NewToken token = create_token(db, Role::kAdmin, "initial admin", std::nullopt, now);
    append_audit(db, now, "cli", "token.create", std::to_string(token.id),
                 "{\"role\":\"admin\",\"label\":\"initial admin\"}");
    tx.commit();
    err << "database " << config.database << " initialised; the admin token follows (shown "
        << "once, store it safely):\n";
    out << token.token << "\n";
    return common::kExitOk;
}

int run_serve(const ServerConfig& config) {
    // Handle SIGTERM/SIGINT on a dedicated thread: block them everywhere else first.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ServerApp app(config);
    int port = app.bind();
    spdlog::info("listening on {}:{} ({}) database={}", config.listen_host, port,
                 config.tls_cert.empty() ? "http" : "https", config.database);
    std::atomic<bool> stopping{false};
    std::thread waiter([&app, &stopping, signals] {
        int received = 0;
        sigwait(&signals, &received);
        spdlog::info("signal {} received: finishing in-flight requests", received);
        stopping = true;
        app.stop();
    });
    for (;;) {
        app.serve();
        if (stopping) {
            break;
        }
        // cpp-httplib ends its accept loop on any accept() error other than EMFILE, EINTR
        // and EAGAIN (e.g. ECONNABORTED from a client that reset early). That must not end
        // the service: listen again on the same address.
        spdlog::error("the listener stopped accepting connections unexpectedly; listening again");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        try {
            if (!stopping) {
                app.bind();
            }
        } catch (const std::exception& e) {
            spdlog::critical("cannot listen again: {}", e.what());
            stopping = true;
            app.stop();
            pthread_kill(waiter.native_handle(), SIGTERM);
            waiter.join();
            return common::kExitFailure;
        }
    }
    app.stop();
    // If serve() ended for another reason, release the signal thread.
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    spdlog::info("stopped; every acknowledged write is committed");
    return common::kExitOk;
}

int run_token_create(const ServerConfig& config, const std::string& role_text,
                     const std::string& label, std::optional<int> expires_days, std::ostream& out,
                     std::ostream& err) {
    auto role = parse_role(role_text);
    if (!role) {
        err << "cipherpulse-server: error: " << role.error().message << "\n";
        return common::kExitBadInput;
    }
    if (expires_days && *expires_days < 1) {
        err << "cipherpulse-server: error: --expires-days must be at least 1\n";
        return common::kExitBadInput;
    }
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    std::int64_t now = now_unix_ms();
    std::optional<std::int64_t> expires;
    if (expires_days) {
        expires = now + std::int64_t{*expires_days} * 86400000;
    }
    NewToken token = create_token(db, role.value(), label, expires, now);
    append_audit(db, now, "cli", "token.create", std::to_string(token.id),
                 std::string("{\"role\":\"") + role_name(role.value()) + "\"}");
    tx.commit();
    err << "token " << token.id << " (" << role_text << ") created; shown once:\n";
    out << token.token << "\n";
    return common::kExitOk;
}

int run_token_list(const ServerConfig& config, std::ostream& out, std::ostream&) {
    store::Database db = open_existing_database(config);
    out << "id\trole\tcreated_ms\texpires_ms\trevoked_ms\tlabel\n";
    for (const auto& t : list_tokens(db)) {
        out << t.id << "\t" << role_name(t.role) << "\t" << t.created_ms << "\t"
            << (t.expires_ms ? std::to_string(*t.expires_ms) : "-") << "\t"
            << (t.revoked_ms ? std::to_string(*t.revoked_ms) : "-") << "\t" << t.label << "\n";
    }
    return common::kExitOk;
}

int run_token_revoke(const ServerConfig& config, std::int64_t id, std::ostream& out,
                     std::ostream& err) {
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    std::int64_t now = now_unix_ms();
    if (!revoke_token(db, id, now)) {
        err << "cipherpulse-server: error: no active token " << id << "\n";
        return common::kExitBadInput;
    }
    append_audit(db, now, "cli", "token.revoke", std::to_string(id), "{}");
    tx.commit();
    out << "token " << id << " revoked\n";
    return common::kExitOk;
}

int run_device_add(const ServerConfig& config, const std::string& id, const std::string& patient,
                   const std::string& public_key_path, std::ostream& out, std::ostream& err) {
    if (!valid_identifier(id) || !valid_identifier(patient)) {
        err << "cipherpulse-server: error: device and patient ids must be 1-128 characters of "
               "A-Z a-z 0-9 . _ : -\n";
        return common::kExitBadInput;
    }
    auto key = Ed25519PublicKey::load(public_key_path);
    if (!key) {
        err << "cipherpulse-server: error: " << key.error().message << "\n";
        return common::kExitBadInput;
    }
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    std::int64_t now = now_unix_ms();
    try {
        auto& st = db.prepare_cached(
            "INSERT INTO devices (id, patient, public_key_pem, status, created_ms) "
            "VALUES (?, ?, ?, 'active', ?)");
        st.bind_all(id, patient, key.value().to_pem(), now);
        st.execute();
    } catch (const store::SqliteError& e) {
        if (e.is_constraint_violation()) {
            err << "cipherpulse-server: error: device " << id
                << " exists already, or the id or patient is invalid\n";
            return common::kExitBadInput;
        }
        throw;
    }
    append_audit(db, now, "cli", "device.add", id, "{\"patient\":\"" + patient + "\"}");
    tx.commit();
    out << "device " << id << " registered for patient " << patient << " (key "
        << key.value().fingerprint() << ")\n";
    return common::kExitOk;
}

int run_device_revoke(const ServerConfig& config, const std::string& id, std::ostream& out,
                      std::ostream& err) {
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    std::int64_t now = now_unix_ms();
    auto& st = db.prepare_cached(
        "UPDATE devices SET status = 'revoked', revoked_ms = ? WHERE id = ? AND status = 'active'");
    st.bind_all(now, id);
    if (st.execute() != 1) {
        err << "cipherpulse-server: error: no active device " << id << "\n";
        return common::kExitBadInput;
    }
    append_audit(db, now, "cli", "device.revoke", id, "{}");
    tx.commit();
    out << "device " << id << " revoked\n";
    return common::kExitOk;
}

int run_audit_verify(const ServerConfig& config, std::ostream& out, std::ostream& err) {
    store::Database db = open_existing_database(config);
    AuditVerification v = verify_audit(db);
    if (!v.ok) {
        err << "audit log BROKEN at entry " << v.first_bad_id << ": " << v.problem << "\n";
        return kExitAuditBroken;
    }
    out << "audit log intact: " << v.entries << " entries, head hash "
        << base64url_encode(v.head_hash) << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::server

#include "store/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cctype>
#include <climits>
#include <map>
#include <utility>

namespace cipherpulse::store {
namespace {

constexpr std::size_t kMaxSqlInMessage = 200;

std::string describe(int code, const std::string& message, std::string_view sql) {
    std::string text = message + " (sqlite error " + std::to_string(code) + ")";
    if (!sql.empty()) {
        text += " in SQL: ";
        if (sql.size() > kMaxSqlInMessage) {
            text.append(sql.substr(0, kMaxSqlInMessage));
            text += "...";
        } else {
            text.append(sql);
        }
    }
    return text;
}

// The connection's last error; read before anything else can overwrite it.
[[noreturn]] void throw_last_error(sqlite3* db, std::string_view sql) {
    throw SqliteError(sqlite3_extended_errcode(db), sqlite3_errmsg(db), sql);
}

void exec_on(sqlite3* db, const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        std::string text = message != nullptr ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        throw SqliteError(sqlite3_extended_errcode(db), text, sql);
    }
}

std::string normalized_synchronous(const std::string& level) {
    std::string upper = level;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (upper != "OFF" && upper != "NORMAL" && upper != "FULL" && upper != "EXTRA") {
        throw std::invalid_argument("synchronous must be OFF, NORMAL, FULL or EXTRA, not '" +
                                    level + "'");
    }
    return upper;
}

}  // namespace

// --- SqliteError ---

SqliteError::SqliteError(int code, const std::string& message, std::string_view sql)
    : std::runtime_error(describe(code, message, sql)), code_(code), message_(message), sql_(sql) {}

bool SqliteError::is_constraint_violation() const noexcept {
    return primary_code() == SQLITE_CONSTRAINT;
}

bool SqliteError::is_busy() const noexcept {
    return primary_code() == SQLITE_BUSY;
}

// --- Statement ---

void Statement::Finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
    sqlite3_finalize(stmt);
}

Statement::Statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
Statement::Statement(Statement&&) noexcept = default;
Statement& Statement::operator=(Statement&&) noexcept = default;
Statement::~Statement() = default;

void Statement::throw_error(int code) const {
    sqlite3* db = sqlite3_db_handle(stmt_.get());
    // Bind and range errors do not always set the connection's message; the code does.
    const std::string message =
        sqlite3_extended_errcode(db) == code ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    throw SqliteError(code, message, sql());
}

void Statement::bind(int index, std::int64_t value) {
    const int rc = sqlite3_bind_int64(stmt_.get(), index, value);
    if (rc != SQLITE_OK) {
        throw_error(rc);
    }
}

void Statement::bind(int index, double value) {
    const int rc = sqlite3_bind_double(stmt_.get(), index, value);
    if (rc != SQLITE_OK) {
        throw_error(rc);
    }
}

void Statement::bind(int index, std::string_view text) {
    // A null pointer would bind NULL; an empty view must bind "".
    const char* data = text.data() != nullptr ? text.data() : "";
    const int rc =
        sqlite3_bind_text64(stmt_.get(), index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) {
        throw_error(rc);
    }
}

void Statement::bind_blob(int index, std::span<const std::uint8_t> blob) {
    // A null pointer would bind NULL; an empty span must bind a zero-length blob.
    const int rc = blob.empty() ? sqlite3_bind_zeroblob(stmt_.get(), index, 0)
                                : sqlite3_bind_blob64(stmt_.get(), index, blob.data(), blob.size(),
                                                      SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        throw_error(rc);
    }
}

void Statement::bind_null(int index) {
    const int rc = sqlite3_bind_null(stmt_.get(), index);
    if (rc != SQLITE_OK) {
        throw_error(rc);
    }
}

void Statement::check_parameter_count(std::size_t count) const {
    const auto expected = static_cast<std::size_t>(parameter_count());
    if (count != expected) {
        throw SqliteError(SQLITE_RANGE,
                          "bind_all got " + std::to_string(count) + " values for " +
                              std::to_string(expected) + " parameters",
                          sql());
    }
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    sqlite3* db = sqlite3_db_handle(stmt_.get());
    SqliteError error(sqlite3_extended_errcode(db), sqlite3_errmsg(db), sql());
    // Release any lock the failed statement holds; the caller may retry with the same
    // bindings.
    sqlite3_reset(stmt_.get());
    throw error;
}

int Statement::execute() {
    sqlite3* db = sqlite3_db_handle(stmt_.get());
    const int total_before = sqlite3_total_changes(db);
    while (step()) {
    }
    // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, even when this
    // statement was DDL or a SELECT; an unchanged total says this one changed nothing.
    const int changed = sqlite3_total_changes(db) == total_before ? 0 : sqlite3_changes(db);
    sqlite3_reset(stmt_.get());
    return changed;
}

void Statement::reset() noexcept {
    // The return value repeats the last step() error, already reported.
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
}

void Statement::check_column(int index) const {
    const int available = sqlite3_data_count(stmt_.get());
    if (index < 0 || index >= available) {
        const std::string message =
            available == 0 ? "no current row to read column " + std::to_string(index) + " from"
                           : "column " + std::to_string(index) + " out of range (row has " +
                                 std::to_string(available) + " columns)";
        throw SqliteError(SQLITE_RANGE, message, sql());
    }
}

std::int64_t Statement::column_int64(int index) const {
    check_column(index);
    return sqlite3_column_int64(stmt_.get(), index);
}

double Statement::column_double(int index) const {
    check_column(index);
    return sqlite3_column_double(stmt_.get(), index);
}

std::string Statement::column_text(int index) const {
    check_column(index);
    // Pointer first, then size: the size is of the converted value.
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), index));
    const int size = sqlite3_column_bytes(stmt_.get(), index);
    if (text == nullptr) {
        return {};
    }
    return std::string(text, static_cast<std::size_t>(size));
}

std::vector<std::uint8_t> Statement::column_blob(int index) const {
    check_column(index);
    const auto* blob = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_.get(), index));
    const int size = sqlite3_column_bytes(stmt_.get(), index);
    if (blob == nullptr) {
        return {};
    }
    return std::vector<std::uint8_t>(blob, blob + size);
}

bool Statement::column_is_null(int index) const {
    check_column(index);
    return sqlite3_column_type(stmt_.get(), index) == SQLITE_NULL;
}

int Statement::column_count() const noexcept {
    return sqlite3_column_count(stmt_.get());
}

int Statement::parameter_count() const noexcept {
    return sqlite3_bind_parameter_count(stmt_.get());
}

std::string_view Statement::sql() const noexcept {
    const char* text = sqlite3_sql(stmt_.get());
    return text != nullptr ? std::string_view(text) : std::string_view();
}

// --- Database ---

// std::less<> lets lookups take a string_view without building a std::string; map nodes
// never move, so references handed out stay valid as the cache grows.
struct Database::StatementCache {
    std::map<std::string, Statement, std::less<>> statements;
};

void Database::Closer::operator()(sqlite3* db) const noexcept {
    // close_v2 defers the close until statements still alive elsewhere are finalized.
    sqlite3_close_v2(db);
}

Database::Database(std::unique_ptr<sqlite3, Closer> db, std::string path)
    : db_(std::move(db)), cache_(std::make_unique<StatementCache>()), path_(std::move(path)) {}

Database::Database(Database&&) noexcept = default;

Database& Database::operator=(Database&& other) noexcept {
    if (this != &other) {
        cache_.reset();  // finalize our statements before closing our connection
        db_ = std::move(other.db_);
        cache_ = std::move(other.cache_);
        path_ = std::move(other.path_);
    }
    return *this;
}

Database::~Database() = default;

Database Database::open(const std::string& path, const OpenOptions& options) {
    const std::string synchronous = normalized_synchronous(options.synchronous);
    if (options.busy_timeout_ms < 0) {
        throw std::invalid_argument("busy_timeout_ms must not be negative");
    }
    int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (options.create && !options.read_only) {
        flags |= SQLITE_OPEN_CREATE;
        struct stat st {};
        if (options.private_file && path != ":memory:" && ::stat(path.c_str(), &st) != 0 &&
            errno == ENOENT) {
            // O_EXCL: if another process created it meanwhile, leave theirs alone.
            int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    // With SQLITE_USE_URI compiled in (Debian), a name starting "file:" is parsed as a URI;
    // "./" keeps it a plain relative path.
    const std::string filename = path.starts_with("file:") ? "./" + path : path;

    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(filename.c_str(), &raw, flags, nullptr);
    std::unique_ptr<sqlite3, Closer> handle(raw);
    if (rc != SQLITE_OK) {
        const int code = raw != nullptr ? sqlite3_extended_errcode(raw) : rc;
        const std::string reason = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
        throw SqliteError(code, "cannot open SQLite database '" + path + "': " + reason);
    }
    sqlite3_extended_result_codes(raw, 1);
    Database db(std::move(handle), path);
    OpenOptions checked = options;
    checked.synchronous = synchronous;
    try {
        db.configure(checked);
    } catch (const SqliteError& e) {
        // SQLite reads the file lazily: "not a database" surfaces here, not in open_v2.
        throw SqliteError(e.code(), "cannot open SQLite database '" + path + "': " + e.message(),
                          e.sql());
    }
    return db;
}

void Database::configure(const OpenOptions& options) {
    sqlite3* db = db_.get();
    sqlite3_busy_timeout(db, options.busy_timeout_ms);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);

    // Touch the schema first so that a file that is not a database fails here, naming the
    // real cause, rather than in some later pragma.
    query_int64("PRAGMA schema_version");

    const char* filename = sqlite3_db_filename(db, "main");
    const bool in_memory = filename == nullptr || filename[0] == '\0';
    if (options.wal && !options.read_only && !in_memory) {
        Statement mode = prepare("PRAGMA journal_mode=WAL");
        if (!mode.step() || mode.column_text(0) != "wal") {
            throw SqliteError(SQLITE_ERROR, "could not switch to WAL journal mode", mode.sql());
        }
    }
    exec("PRAGMA synchronous=" + options.synchronous);
    exec("PRAGMA foreign_keys=ON");
}

void Database::exec(std::string_view sql) {
    exec_on(db_.get(), std::string(sql).c_str());
}

Statement Database::prepare(std::string_view sql) {
    return prepare_with_flags(sql, 0);
}

Statement Database::prepare_with_flags(std::string_view sql, unsigned flags) {
    if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
        throw SqliteError(SQLITE_TOOBIG, "SQL text too long");
    }
    sqlite3* db = db_.get();
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    const int rc =
        sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), flags, &raw, &tail);
    if (rc != SQLITE_OK) {
        throw_last_error(db, sql);
    }
    Statement statement(raw);
    if (raw == nullptr) {
        throw SqliteError(SQLITE_MISUSE, "no SQL statement to prepare", sql);
    }
    // Preparing the rest succeeds without a statement only for whitespace and comments;
    // anything else (another statement, or garbage that would be silently ignored) is
    // refused.
    const auto rest = static_cast<int>(sql.data() + sql.size() - tail);
    sqlite3_stmt* extra = nullptr;
    const int rest_rc = sqlite3_prepare_v3(db, tail, rest, 0, &extra, nullptr);
    const bool more = rest_rc != SQLITE_OK || extra != nullptr;
    sqlite3_finalize(extra);
    if (more) {
        throw SqliteError(SQLITE_MISUSE, "prepare takes one statement; use exec() for several",
                          sql);
    }
    return statement;
}

Statement& Database::prepare_cached(std::string_view sql) {
    auto& statements = cache_->statements;
    if (auto it = statements.find(sql); it != statements.end()) {
        it->second.reset();
        return it->second;
    }
    // PERSISTENT: a hint that the statement lives long, so SQLite allocates it accordingly.
    Statement statement = prepare_with_flags(sql, SQLITE_PREPARE_PERSISTENT);
    return statements.emplace(std::string(sql), std::move(statement)).first->second;
}

void Database::clear_statement_cache() noexcept {
    cache_->statements.clear();
}

std::int64_t Database::last_insert_rowid() const noexcept {
    return sqlite3_last_insert_rowid(db_.get());
}

int Database::changes() const noexcept {
    return sqlite3_changes(db_.get());
}

bool Database::in_transaction() const noexcept {
    return sqlite3_get_autocommit(db_.get()) == 0;
}

std::int64_t Database::query_int64(std::string_view sql) {
    Statement& statement = prepare_cached(sql);
    if (!statement.step()) {
        throw SqliteError(SQLITE_ERROR, "query returned no row", sql);
    }
    const std::int64_t value = statement.column_int64(0);
    statement.reset();
    return value;
}

int Database::user_version() {
    return static_cast<int>(query_int64("PRAGMA user_version"));
}

void Database::set_user_version(int version) {
    exec("PRAGMA user_version=" + std::to_string(version));
}

std::int64_t Database::size_bytes() {
    return query_int64("PRAGMA page_count") * query_int64("PRAGMA page_size");
}

void Database::checkpoint() {
    const int rc =
        sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        throw_last_error(db_.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
    }
}

// --- Transaction ---

namespace {

const char* begin_sql(Transaction::Mode mode) {
    switch (mode) {
        case Transaction::Mode::kDeferred:
            return "BEGIN DEFERRED";
        case Transaction::Mode::kImmediate:
            return "BEGIN IMMEDIATE";
        case Transaction::Mode::kExclusive:
            return "BEGIN EXCLUSIVE";
    }
    throw std::invalid_argument("unknown transaction mode");
}

}  // namespace

Transaction::Transaction(Database& db, Mode mode) : db_(db.handle()) {
    exec_on(db_, begin_sql(mode));
}

Transaction::~Transaction() {
    // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, ...); then
    // there is nothing left to roll back.
    if (!finished_ && sqlite3_get_autocommit(db_) == 0) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

void Transaction::commit() {
    if (finished_) {
        throw std::logic_error("transaction already committed or rolled back");
    }
    exec_on(db_, "COMMIT");
    finished_ = true;
}

void Transaction::rollback() {
    if (finished_) {
        throw std::logic_error("transaction already committed or rolled back");
    }
    finished_ = true;
    if (sqlite3_get_autocommit(db_) == 0) {
        exec_on(db_, "ROLLBACK");
    }
}

// --- Migrations ---

void migrate(Database& db, std::span<const Migration> migrations) {
    int previous = 0;
    for (const Migration& migration : migrations) {
        if (migration.version <= previous) {
            throw std::invalid_argument(
                "migration versions must be positive and strictly increasing; " +
                std::to_string(migration.version) + " follows " + std::to_string(previous));
        }
        previous = migration.version;
    }
    const int newest = previous;

    auto check_not_newer = [&](int current) {
        if (current > newest) {
            throw std::runtime_error("database schema version " + std::to_string(current) +
                                     " is newer than this program supports (" +
                                     std::to_string(newest) + ")");
        }
    };
    check_not_newer(db.user_version());

    for (const Migration& migration : migrations) {
        if (migration.version <= db.user_version()) {
            continue;
        }
        Transaction transaction(db);
        // Another process may have migrated while we waited for the write lock.
        const int current = db.user_version();
        check_not_newer(current);
        if (migration.version <= current) {
            continue;
        }
        try {
            db.exec(migration.sql);
        } catch (const SqliteError& e) {
            throw SqliteError(e.code(),
                              "migration to schema version " + std::to_string(migration.version) +
                                  " failed: " + e.message(),
                              e.sql());
        }
        db.set_user_version(migration.version);
        transaction.commit();
    }
}

}  // namespace cipherpulse::store

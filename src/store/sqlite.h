// SQLite access layer: RAII owners for connections, prepared statements and transactions,
// plus schema migrations through PRAGMA user_version.
//
// The model is SQLiteCpp: every C handle lives in a unique_ptr with a deleter, a Transaction
// begins in its constructor and rolls back in its destructor unless committed, destructors
// never throw. Errors from SQLite are thrown as SqliteError; configuration and programmer
// errors (a bad synchronous level, a badly ordered migration list) as std::invalid_argument.
//
// Thread safety: a Database, and every Statement prepared on it, belongs to one thread at a
// time. Concurrency comes from separate connections to the same file (one writer, any number
// of readers in WAL mode), never from sharing one connection.
//
// Secrets: SQL text may appear in errors and logs; bound values never do. Bind ciphertexts,
// tokens and keys as parameters, never splice them into SQL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace cipherpulse::store {

// SqliteError is an error reported by SQLite. `code()` is the extended result code (e.g.
// SQLITE_CONSTRAINT_UNIQUE); `sql()` is the SQL text being run, with `?` placeholders and
// never the bound values. `what()` holds the message, the code and the SQL.
class SqliteError : public std::runtime_error {
  public:
    SqliteError(int code, const std::string& message, std::string_view sql = {});

    int code() const noexcept { return code_; }
    // primary_code is the primary result code (the low byte of `code()`, e.g. SQLITE_BUSY).
    int primary_code() const noexcept { return code_ & 0xff; }
    const std::string& sql() const noexcept { return sql_; }
    // message is the message alone, without the code and SQL that what() adds.
    const std::string& message() const noexcept { return message_; }

    // is_constraint_violation: a UNIQUE, PRIMARY KEY, NOT NULL, CHECK or FOREIGN KEY
    // constraint refused the change.
    bool is_constraint_violation() const noexcept;
    // is_busy: another connection held the lock for longer than the busy timeout (or, in a
    // DEFERRED transaction, committed first: SQLITE_BUSY_SNAPSHOT). Retrying may succeed.
    bool is_busy() const noexcept;

  private:
    int code_;
    std::string message_;
    std::string sql_;
};

// OpenOptions configures Database::open.
struct OpenOptions {
    // read_only opens with SQLITE_OPEN_READONLY: every write fails with SQLITE_READONLY.
    bool read_only = false;
    // create makes a missing file (ignored when read_only).
    bool create = true;
    // synchronous is OFF, NORMAL, FULL or EXTRA (case-insensitive). In WAL mode NORMAL never
    // corrupts the database but may lose the last commits on power loss; FULL fsyncs the WAL
    // on every commit. (Debian builds SQLite with FULL as the WAL default; NORMAL here is
    // deliberate.)
    std::string synchronous = "NORMAL";
    // busy_timeout_ms is how long a locked database is retried before SQLITE_BUSY (>= 0).
    int busy_timeout_ms = 5000;
    // private_file creates a missing database file with mode 0600 (for secrets or private
    // data) instead of 0644 minus the umask. An existing file is left alone: the check never
    // opens and closes a descriptor on it, which would drop every POSIX lock this process
    // holds on the file (SQLite's locks of other connections included).
    bool private_file = false;
    // wal switches a file database to journal_mode=WAL (persistent in the file). Ignored for
    // in-memory and read-only databases; false leaves the file's journal mode as it is.
    bool wal = true;
};

// Statement is a prepared statement; it finalizes itself on destruction. Parameter indices
// are 1-based (as in SQL `?1`), column indices 0-based. Move-only; a moved-from Statement
// may only be destroyed or assigned to. It must not be used after its Database is closed
// (destroying it then is safe: the connection closes once its last statement is gone).
class Statement {
  public:
    // Statement takes ownership of `stmt` (which may be null only to be assigned later).
    explicit Statement(sqlite3_stmt* stmt) noexcept;
    Statement(Statement&&) noexcept;
    Statement& operator=(Statement&&) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    ~Statement();

    // bind* set parameter `index`; values are copied into the statement. Text and blobs may
    // contain NUL bytes; an empty text or blob binds an empty value, not NULL. Other integer
    // types: cast to std::int64_t (unsigned 64-bit values do not fit).
    // @throws SqliteError (SQLITE_RANGE) for an index the SQL does not have.
    void bind(int index, std::int64_t value);
    void bind(int index, int value) { bind(index, static_cast<std::int64_t>(value)); }
    void bind(int index, double value);
    void bind(int index, std::string_view text);
    void bind_blob(int index, std::span<const std::uint8_t> blob);
    void bind_null(int index);

    // bind_all binds `args` to parameters 1..N: integers, doubles, text (std::string,
    // string_view, literals), byte spans or vectors (as blobs) and nullptr (as NULL).
    // @throws SqliteError (SQLITE_RANGE) unless N is the statement's parameter count.
    template <class... Args>
    Statement& bind_all(const Args&... args) {
        check_parameter_count(sizeof...(Args));
        [[maybe_unused]] int index = 0;
        (bind_arg(++index, args), ...);
        return *this;
    }

    // step runs the statement to its next row: true when a row is available to the column
    // getters, false when the statement is done.
    // @throws SqliteError on any error (the statement is then reset, bindings kept).
    bool step();

    // execute steps to completion and resets, keeping the bindings. Returns the rows changed
    // by this INSERT, UPDATE or DELETE (not counting triggers), 0 for any other statement.
    // @throws SqliteError as step().
    int execute();

    // reset rewinds the statement and clears every binding to NULL. A SELECT left before
    // its last row keeps a read transaction open (blocking WAL checkpoints) until reset.
    void reset() noexcept;

    // column_* read column `index` of the current row, converting as SQLite does. NULL reads
    // as 0, "" or an empty vector; use column_is_null to tell.
    // @throws SqliteError (SQLITE_RANGE) without a current row or for an index out of range.
    std::int64_t column_int64(int index) const;
    double column_double(int index) const;
    std::string column_text(int index) const;
    std::vector<std::uint8_t> column_blob(int index) const;
    bool column_is_null(int index) const;
    int column_count() const noexcept;

    int parameter_count() const noexcept;
    // sql is the statement's SQL text as prepared (trailing comments dropped), no values.
    std::string_view sql() const noexcept;
    sqlite3_stmt* handle() const noexcept { return stmt_.get(); }

  private:
    struct Finalizer {
        void operator()(sqlite3_stmt* stmt) const noexcept;
    };

    void check_parameter_count(std::size_t count) const;
    void check_column(int index) const;
    [[noreturn]] void throw_error(int code) const;

    void bind_arg(int index, std::int64_t value) { bind(index, value); }
    void bind_arg(int index, int value) { bind(index, value); }
    void bind_arg(int index, double value) { bind(index, value); }
    void bind_arg(int index, std::string_view text) { bind(index, text); }
    void bind_arg(int index, std::span<const std::uint8_t> blob) { bind_blob(index, blob); }
    void bind_arg(int index, std::nullptr_t) { bind_null(index); }

    std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// Database is one connection. Move-only; closing (in the destructor) never throws. The
// statement cache moves with it: references from prepare_cached stay valid across moves.
class Database {
  public:
    // open connects to the database file at `path` (":memory:" for a private in-memory
    // database). `path` is always a file system path, never a URI, even though Debian's
    // SQLite treats "file:" names as URIs. Sets busy_timeout, journal_mode=WAL (file
    // databases, not read-only), synchronous, foreign_keys=ON, and turns off double-quoted
    // string literals (a misspelt "column" is an error, not a string).
    // New files are created with mode 0644 minus the umask; pre-create a 0600 empty file
    // (a valid empty database) for private data.
    // @throws SqliteError naming `path` when the file cannot be opened or is not a database,
    //   or WAL cannot be enabled.
    // @throws std::invalid_argument for a bad synchronous level or negative busy timeout.
    static Database open(const std::string& path, const OpenOptions& options = {});

    Database(Database&&) noexcept;
    Database& operator=(Database&&) noexcept;
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;
    ~Database();

    // exec runs `sql`, which may hold several statements separated by semicolons and no
    // parameters. Statements before a failing one stay applied unless inside a Transaction.
    // @throws SqliteError
    void exec(std::string_view sql);

    // prepare compiles one statement (trailing whitespace or comments allowed).
    // @throws SqliteError for invalid SQL, empty SQL or more than one statement.
    Statement prepare(std::string_view sql);

    // prepare_cached returns this connection's cached statement for `sql`, preparing it on
    // first use and resetting it (clearing bindings) on every later one. The reference is
    // valid until clear_statement_cache() or the Database is destroyed. Use it for constant
    // SQL only (the cache is never trimmed), and never for a statement whose rows are still
    // being read further up the stack: getting it again resets it.
    // @throws SqliteError as prepare.
    Statement& prepare_cached(std::string_view sql);
    // clear_statement_cache finalizes every cached statement.
    void clear_statement_cache() noexcept;

    std::int64_t last_insert_rowid() const noexcept;
    // changes is the row count of the last completed INSERT, UPDATE or DELETE.
    int changes() const noexcept;
    // in_transaction: a transaction is open (BEGIN without COMMIT or ROLLBACK yet).
    bool in_transaction() const noexcept;

    // user_version and set_user_version read and write PRAGMA user_version, the schema
    // version managed by migrate(). Inside a transaction the write rolls back with it.
    int user_version();
    void set_user_version(int version);

    // size_bytes is page_count * page_size: the database's logical size including free
    // pages and committed pages still in the WAL, not the size of the -wal file.
    std::int64_t size_bytes();

    // checkpoint copies the WAL into the database file and truncates the WAL to zero bytes
    // (wal_checkpoint(TRUNCATE)); waits up to the busy timeout for readers and the writer.
    // No-op for a database not in WAL mode.
    // @throws SqliteError, is_busy() when readers or a writer kept it from completing.
    void checkpoint();

    const std::string& path() const noexcept { return path_; }
    sqlite3* handle() const noexcept { return db_.get(); }

  private:
    struct Closer {
        void operator()(sqlite3* db) const noexcept;
    };
    struct StatementCache;

    Database(std::unique_ptr<sqlite3, Closer> db, std::string path);
    void configure(const OpenOptions& options);
    Statement prepare_with_flags(std::string_view sql, unsigned flags);
    std::int64_t query_int64(std::string_view sql);

    // Declared before cache_ so that cached statements are finalized first.
    std::unique_ptr<sqlite3, Closer> db_;
    std::unique_ptr<StatementCache> cache_;
    std::string path_;
};

// Transaction is a BEGIN ... COMMIT guard: it begins in its constructor and rolls back in
// its destructor unless commit() or rollback() ran. Not copyable or movable. It holds the
// connection handle, so moving the Database while it is open is harmless.
class Transaction {
  public:
    // kDeferred takes locks on first use; kImmediate (the default) takes the write lock at
    // once, waiting up to the busy timeout, so a later write can never fail with
    // SQLITE_BUSY_SNAPSHOT; kExclusive also keeps readers out (outside WAL mode).
    enum class Mode { kDeferred, kImmediate, kExclusive };

    // @throws SqliteError when the lock is not obtained within the busy timeout (is_busy())
    //   or a transaction is already open on the connection.
    explicit Transaction(Database& db, Mode mode = Mode::kImmediate);
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    // ~Transaction rolls back an open transaction, swallowing any error.
    ~Transaction();

    // commit makes the changes durable (to the synchronous level). If it throws the
    // transaction is still open: retry commit() or let the destructor roll back.
    // @throws SqliteError; std::logic_error when already committed or rolled back.
    void commit();
    // rollback discards the changes now, reporting errors the destructor would swallow.
    // @throws SqliteError; std::logic_error when already committed or rolled back.
    void rollback();

  private:
    sqlite3* db_;
    bool finished_ = false;
};

// Migration is one schema step: `sql` (several statements allowed) takes the schema from
// version - 1 (or any earlier version) to `version`.
struct Migration {
    int version;
    std::string_view sql;
};

// migrate brings the schema up to the newest version in `migrations`: each migration with
// a version above user_version runs, in ascending order, in its own IMMEDIATE transaction
// that also sets user_version, so a failing migration leaves neither partial tables nor a
// changed version. Running it again is a no-op; concurrent callers are safe (the version is
// re-read under the write lock). PRAGMA foreign_keys cannot change inside a transaction, so
// a migration rebuilding a table must keep foreign keys valid at every statement.
// @throws std::invalid_argument unless versions are positive and strictly increasing.
// @throws std::runtime_error when the database's version is newer than the newest known.
// @throws SqliteError when a migration fails (message names its version).
void migrate(Database& db, std::span<const Migration> migrations);

}  // namespace cipherpulse::store

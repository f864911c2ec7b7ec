#include "store/sqlite.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>
#include "unit/test_support.h"

namespace cipherpulse::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory, removed with its contents on destruction.
using cipherpulse::testing::TempDir;

std::string pragma_text(Database& db, const std::string& pragma) {
    Statement statement = db.prepare("PRAGMA " + pragma);
    EXPECT_TRUE(statement.step());
    return statement.column_text(0);
}

std::int64_t pragma_int(Database& db, const std::string& pragma) {
    Statement statement = db.prepare("PRAGMA " + pragma);
    EXPECT_TRUE(statement.step());
    return statement.column_int64(0);
}

std::int64_t count_rows(Database& db, const std::string& table) {
    Statement statement = db.prepare("SELECT count(*) FROM " + table);
    EXPECT_TRUE(statement.step());
    return statement.column_int64(0);
}

bool table_exists(Database& db, const std::string& table) {
    Statement statement =
        db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?");
    statement.bind(1, table);
    return statement.step();
}

// --- Opening ---

TEST(SqliteTest, InMemoryDatabaseIsConfigured) {
    Database db = Database::open(":memory:");
    EXPECT_EQ(pragma_text(db, "journal_mode"), "memory");
    EXPECT_EQ(pragma_int(db, "synchronous"), 1);
    EXPECT_EQ(pragma_int(db, "foreign_keys"), 1);
    EXPECT_EQ(pragma_int(db, "busy_timeout"), 5000);
    EXPECT_FALSE(db.in_transaction());
}

TEST(SqliteTest, FileDatabaseUsesWalAndConfiguredSynchronous) {
    TempDir dir;
    {
        Database db = Database::open((dir / "normal.db").string());
        EXPECT_EQ(pragma_text(db, "journal_mode"), "wal");
        EXPECT_EQ(pragma_int(db, "synchronous"), 1);
        db.exec("CREATE TABLE t(x)");
        EXPECT_TRUE(fs::exists((dir / "normal.db-wal").string()));
    }
    OpenOptions full;
    full.synchronous = "FULL";
    full.busy_timeout_ms = 250;
    Database db_full = Database::open((dir / "full.db").string(), full);
    EXPECT_EQ(pragma_text(db_full, "journal_mode"), "wal");
    EXPECT_EQ(pragma_int(db_full, "synchronous"), 2);
    EXPECT_EQ(pragma_int(db_full, "busy_timeout"), 250);

    OpenOptions off;
    off.synchronous = "off";
    Database db_off = Database::open((dir / "off.db").string(), off);
    EXPECT_EQ(pragma_int(db_off, "synchronous"), 0);
}

TEST(SqliteTest, WalCanBeLeftOff) {
    TempDir dir;
    OpenOptions options;
    options.wal = false;
    Database db = Database::open((dir / "rollback.db").string(), options);
    EXPECT_EQ(pragma_text(db, "journal_mode"), "delete");
}

TEST(SqliteTest, InvalidOptionsAreRejected) {
    OpenOptions options;
    options.synchronous = "SOMETIMES";
    EXPECT_THROW(Database::open(":memory:", options), std::invalid_argument);
    options.synchronous = "NORMAL; DROP TABLE t";
    EXPECT_THROW(Database::open(":memory:", options), std::invalid_argument);
    options.synchronous = "NORMAL";
    options.busy_timeout_ms = -1;
    EXPECT_THROW(Database::open(":memory:", options), std::invalid_argument);
}

TEST(SqliteTest, OpenFailureNamesThePath) {
    TempDir dir;
    const std::string missing_dir = (dir / "no/such/dir/data.db").string();
    try {
        Database::open(missing_dir);
        FAIL() << "opened a database in a missing directory";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.primary_code(), SQLITE_CANTOPEN);
        EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
    }

    OpenOptions no_create;
    no_create.create = false;
    EXPECT_THROW(Database::open((dir / "absent.db").string(), no_create), SqliteError);
    OpenOptions read_only;
    read_only.read_only = true;
    EXPECT_THROW(Database::open((dir / "absent.db").string(), read_only), SqliteError);
    EXPECT_FALSE(fs::exists((dir / "absent.db").string()));
}

TEST(SqliteTest, FileThatIsNotADatabaseIsRefusedNamingThePath) {
    TempDir dir;
    const std::string path = (dir / "garbage.db").string();
    {
        std::ofstream out(path, std::ios::binary);
        for (int i = 0; i < 200; ++i) {
            out << "this is not an SQLite database file ";
        }
    }
    try {
        Database::open(path);
        FAIL() << "opened a file that is not a database";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.primary_code(), SQLITE_NOTADB);
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    // Also without the journal-mode switch, which would have read the file anyway.
    OpenOptions read_only;
    read_only.read_only = true;
    try {
        Database::open(path, read_only);
        FAIL() << "opened a file that is not a database, read-only";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.primary_code(), SQLITE_NOTADB);
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(SqliteTest, PathIsNeverTreatedAsUri) {
    TempDir dir;
    const fs::path previous = fs::current_path();
    fs::current_path(dir.path());
    bool created = false;
    try {
        // As a URI this would be an in-memory database and create no file.
        Database db = Database::open("file:plain.db?mode=memory");
        db.exec("CREATE TABLE t(x)");
        created = fs::exists(dir.path() / "file:plain.db?mode=memory");
    } catch (...) {
        fs::current_path(previous);
        throw;
    }
    fs::current_path(previous);
    EXPECT_TRUE(created);
}

TEST(SqliteTest, ReadOnlyConnectionReadsButCannotWrite) {
    TempDir dir;
    const std::string path = (dir / "ro.db").string();
    Database writer = Database::open(path);
    writer.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");

    OpenOptions options;
    options.read_only = true;
    auto check = [&] {
        Database reader = Database::open(path, options);
        EXPECT_EQ(count_rows(reader, "t"), 1);
        try {
            reader.exec("INSERT INTO t VALUES (2)");
            FAIL() << "wrote through a read-only connection";
        } catch (const SqliteError& e) {
            EXPECT_EQ(e.primary_code(), SQLITE_READONLY) << e.what();
        }
        EXPECT_THROW(reader.set_user_version(3), SqliteError);
    };
    check();  // while the writer is open (WAL and shm files present)
    writer = Database::open(":memory:");
    ASSERT_FALSE(fs::exists(path + "-wal"));
    check();  // after the last writer closed and removed them
    Database reopened = Database::open(path);
    EXPECT_EQ(count_rows(reopened, "t"), 1);
}

// --- Statements ---

TEST(SqliteTest, ExecRunsSeveralStatementsAndReportsErrors) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);");
    EXPECT_EQ(count_rows(db, "t"), 2);
    try {
        db.exec("INSERT INTO t VALUES (3); INSERT INTO missing VALUES (4)");
        FAIL() << "exec of a missing table succeeded";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.primary_code(), SQLITE_ERROR);
        EXPECT_NE(e.message().find("no such table: missing"), std::string::npos) << e.what();
        EXPECT_EQ(e.sql(), "INSERT INTO t VALUES (3); INSERT INTO missing VALUES (4)");
    }
    // Outside a transaction the statement before the failing one stays applied.
    EXPECT_EQ(count_rows(db, "t"), 3);
}

TEST(SqliteTest, PrepareTakesExactlyOneStatement) {
    Database db = Database::open(":memory:");
    Statement one = db.prepare("SELECT 1;  -- trailing comment\n");
    EXPECT_EQ(one.sql(), "SELECT 1;");
    ASSERT_TRUE(one.step());
    EXPECT_EQ(one.column_int64(0), 1);
    try {
        db.prepare("SELECT 1; SELECT 2");
        FAIL() << "prepared two statements";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.code(), SQLITE_MISUSE);
    }
    EXPECT_THROW(db.prepare("SELECT 1; garbage"), SqliteError);
    EXPECT_THROW(db.prepare("   "), SqliteError);
    try {
        db.prepare("SELEC 1");
        FAIL() << "prepared invalid SQL";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.primary_code(), SQLITE_ERROR);
        EXPECT_EQ(e.sql(), "SELEC 1");
    }
}

TEST(SqliteTest, DoubleQuotedStringLiteralsAreErrors) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE t(x)");
    EXPECT_THROW(db.prepare("SELECT \"not_a_column\" FROM t"), SqliteError);
    EXPECT_NO_THROW(db.prepare("SELECT \"x\" FROM t"));
}

TEST(SqliteTest, ValuesRoundTripExactly) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE v(i INTEGER, d REAL, s TEXT, b BLOB)");
    std::vector<std::uint8_t> blob(256);
    for (std::size_t i = 0; i < blob.size(); ++i) {
        blob[i] = static_cast<std::uint8_t>(i);
    }
    blob.push_back(0);  // trailing NUL too
    const std::string text("caf\xc3\xa9\0tail", 10);

    Statement insert = db.prepare("INSERT INTO v VALUES (?, ?, ?, ?)");
    const std::array<std::int64_t, 4> integers = {std::numeric_limits<std::int64_t>::max(),
                                                  std::numeric_limits<std::int64_t>::min(), 0,
                                                  (std::int64_t{1} << 53) + 1};
    for (const std::int64_t value : integers) {
        insert.bind(1, value);
        insert.bind(2, -1.0 / 3.0);
        insert.bind(3, text);
        insert.bind_blob(4, blob);
        EXPECT_EQ(insert.execute(), 1);
    }

    Statement select = db.prepare("SELECT i, d, s, b, typeof(b) FROM v ORDER BY rowid");
    for (const std::int64_t value : integers) {
        ASSERT_TRUE(select.step());
        EXPECT_EQ(select.column_int64(0), value);
        EXPECT_EQ(select.column_double(1), -1.0 / 3.0);
        EXPECT_EQ(select.column_text(2), text);
        EXPECT_EQ(select.column_text(2).size(), 10u);
        EXPECT_EQ(select.column_blob(3), blob);
        EXPECT_EQ(select.column_text(4), "blob");
    }
    EXPECT_FALSE(select.step());
}

TEST(SqliteTest, EmptyValuesAreNotNull) {
    Database db = Database::open(":memory:");
    Statement select = db.prepare("SELECT ?1, typeof(?1), ?2, typeof(?2), ?3, typeof(?3)");
    select.bind(1, std::string_view());
    select.bind_blob(2, std::span<const std::uint8_t>());
    select.bind_null(3);
    ASSERT_TRUE(select.step());
    EXPECT_FALSE(select.column_is_null(0));
    EXPECT_EQ(select.column_text(0), "");
    EXPECT_EQ(select.column_text(1), "text");
    EXPECT_FALSE(select.column_is_null(2));
    EXPECT_TRUE(select.column_blob(2).empty());
    EXPECT_EQ(select.column_text(3), "blob");
    EXPECT_TRUE(select.column_is_null(4));
    EXPECT_EQ(select.column_int64(4), 0);
    EXPECT_EQ(select.column_text(4), "");
    EXPECT_EQ(select.column_text(5), "null");
}

TEST(SqliteTest, BindAllBindsInOrderAndChecksTheCount) {
    Database db = Database::open(":memory:");
    const std::vector<std::uint8_t> blob = {0, 1, 0, 2};
    Statement select = db.prepare(
        "SELECT typeof(?1), typeof(?2), typeof(?3), typeof(?4), typeof(?5), typeof(?6), "
        "typeof(?7), ?1, ?2, ?3, ?4, ?5, ?6");
    select.bind_all(7, std::int64_t{-9}, 2.5, "literal", std::string("string"), blob, nullptr);
    ASSERT_TRUE(select.step());
    EXPECT_EQ(select.column_text(0), "integer");
    EXPECT_EQ(select.column_text(1), "integer");
    EXPECT_EQ(select.column_text(2), "real");
    EXPECT_EQ(select.column_text(3), "text");
    EXPECT_EQ(select.column_text(4), "text");
    EXPECT_EQ(select.column_text(5), "blob");
    EXPECT_EQ(select.column_text(6), "null");
    EXPECT_EQ(select.column_int64(7), 7);
    EXPECT_EQ(select.column_int64(8), -9);
    EXPECT_EQ(select.column_double(9), 2.5);
    EXPECT_EQ(select.column_text(10), "literal");
    EXPECT_EQ(select.column_text(11), "string");
    EXPECT_EQ(select.column_blob(12), blob);
    select.reset();
    EXPECT_THROW(select.bind_all(1, 2), SqliteError);
}

TEST(SqliteTest, IndexErrorsThrow) {
    Database db = Database::open(":memory:");
    Statement select = db.prepare("SELECT ?");
    try {
        select.bind(2, std::int64_t{1});
        FAIL() << "bound a parameter the SQL does not have";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.code(), SQLITE_RANGE);
    }
    EXPECT_THROW(select.column_int64(0), SqliteError);  // no current row
    select.bind(1, 5);
    ASSERT_TRUE(select.step());
    EXPECT_EQ(select.column_int64(0), 5);
    EXPECT_THROW(select.column_int64(1), SqliteError);
    EXPECT_THROW(select.column_text(-1), SqliteError);
    EXPECT_FALSE(select.step());
    EXPECT_THROW(select.column_int64(0), SqliteError);  // done: no row
}

TEST(SqliteTest, ExecuteCountsChangedRowsOfThisStatementOnly) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)");
    EXPECT_EQ(db.prepare("UPDATE t SET x = x + 1").execute(), 3);
    EXPECT_EQ(db.changes(), 3);
    EXPECT_EQ(db.prepare("CREATE TABLE u(y)").execute(), 0);
    EXPECT_EQ(db.prepare("SELECT * FROM t").execute(), 0);
    EXPECT_EQ(db.prepare("DELETE FROM t WHERE x > 2").execute(), 2);
    EXPECT_EQ(db.prepare("DELETE FROM t WHERE x > 100").execute(), 0);
    Statement insert = db.prepare("INSERT INTO u VALUES (?)");
    insert.bind(1, 42);
    insert.execute();
    EXPECT_EQ(db.last_insert_rowid(), 1);
    insert.execute();  // bindings survive execute()
    EXPECT_EQ(db.last_insert_rowid(), 2);
    Statement check = db.prepare("SELECT count(*) FROM u WHERE y = 42");
    ASSERT_TRUE(check.step());
    EXPECT_EQ(check.column_int64(0), 2);
}

TEST(SqliteTest, CachedStatementIsReusedWithFreshBindings) {
    Database db = Database::open(":memory:");
    db.exec(
        "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT); "
        "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')");
    const std::string_view sql = "SELECT v FROM t WHERE k >= ? ORDER BY k";
    Statement& first = db.prepare_cached(sql);
    EXPECT_EQ(&first, &db.prepare_cached(std::string(sql)));
    EXPECT_NE(&first, &db.prepare_cached("SELECT 1"));

    first.bind(1, 2);
    ASSERT_TRUE(first.step());
    EXPECT_EQ(first.column_text(0), "two");  // left mid-iteration

    Statement& again = db.prepare_cached(sql);
    ASSERT_EQ(&again, &first);
    // Reset and bindings cleared: k >= NULL matches nothing.
    EXPECT_FALSE(again.step());
    again.reset();
    again.bind(1, 1);
    ASSERT_TRUE(again.step());
    EXPECT_EQ(again.column_text(0), "one");

    Database moved = std::move(db);
    Statement& after_move = moved.prepare_cached(sql);
    EXPECT_EQ(&after_move, &first);
    after_move.bind(1, 3);
    ASSERT_TRUE(after_move.step());
    EXPECT_EQ(after_move.column_text(0), "three");

    moved.clear_statement_cache();
    Statement& fresh = moved.prepare_cached(sql);
    fresh.bind(1, 3);
    ASSERT_TRUE(fresh.step());
    EXPECT_EQ(fresh.column_text(0), "three");
}

TEST(SqliteTest, StatementMayOutliveItsDatabase) {
    std::optional<Statement> statement;
    {
        Database db = Database::open(":memory:");
        statement.emplace(db.prepare("SELECT 1"));
        db.prepare_cached("SELECT 2");
    }
    statement.reset();  // finalizes; the deferred close completes here
    SUCCEED();
}

// --- Errors ---

TEST(SqliteTest, ConstraintViolationIsReportedWithoutBoundValues) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE tokens(token TEXT UNIQUE NOT NULL)");
    const std::string_view sql = "INSERT INTO tokens VALUES (?)";
    db.prepare_cached(sql).bind_all("s3cret-token-value").execute();
    try {
        db.prepare_cached(sql).bind_all("s3cret-token-value").execute();
        FAIL() << "duplicate accepted";
    } catch (const SqliteError& e) {
        EXPECT_TRUE(e.is_constraint_violation());
        EXPECT_FALSE(e.is_busy());
        EXPECT_EQ(e.code(), SQLITE_CONSTRAINT_UNIQUE);
        EXPECT_EQ(e.sql(), sql);
        EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
    }
    try {
        db.prepare_cached(sql).bind_all(nullptr).execute();
        FAIL() << "NULL accepted";
    } catch (const SqliteError& e) {
        EXPECT_EQ(e.code(), SQLITE_CONSTRAINT_NOTNULL);
    }
    // The failed statement is reusable.
    EXPECT_EQ(db.prepare_cached(sql).bind_all("another").execute(), 1);
    EXPECT_EQ(count_rows(db, "tokens"), 2);
}

TEST(SqliteTest, ForeignKeysAreEnforced) {
    Database db = Database::open(":memory:");
    db.exec(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY); "
        "CREATE TABLE child(parent_id INTEGER REFERENCES parent(id))");
    try {
        db.exec("INSERT INTO child VALUES (7)");
        FAIL() << "dangling reference accepted";
    } catch (const SqliteError& e) {
        EXPECT_TRUE(e.is_constraint_violation());
        EXPECT_EQ(e.code(), SQLITE_CONSTRAINT_FOREIGNKEY);
    }
}

// --- Transactions ---

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE t(x)");
    {
        Transaction transaction(db);
        EXPECT_TRUE(db.in_transaction());
        db.exec("INSERT INTO t VALUES (1)");
        EXPECT_EQ(count_rows(db, "t"), 1);
    }
    EXPECT_FALSE(db.in_transaction());
    EXPECT_EQ(count_rows(db, "t"), 0);

    try {
        Transaction transaction(db);
        db.exec("INSERT INTO t VALUES (1)");
        throw std::runtime_error("failure mid-transaction");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(count_rows(db, "t"), 0);

    {
        Transaction transaction(db, Transaction::Mode::kDeferred);
        db.exec("INSERT INTO t VALUES (2)");
        transaction.commit();
        EXPECT_FALSE(db.in_transaction());
        EXPECT_THROW(transaction.commit(), std::logic_error);
        EXPECT_THROW(transaction.rollback(), std::logic_error);
    }
    EXPECT_EQ(count_rows(db, "t"), 1);

    {
        Transaction transaction(db, Transaction::Mode::kExclusive);
        db.exec("INSERT INTO t VALUES (3)");
        transaction.rollback();
        EXPECT_FALSE(db.in_transaction());
    }
    EXPECT_EQ(count_rows(db, "t"), 1);
}

TEST(SqliteTest, NestedTransactionIsRefused) {
    Database db = Database::open(":memory:");
    db.exec("CREATE TABLE t(x)");
    Transaction outer(db);
    db.exec("INSERT INTO t VALUES (1)");
    EXPECT_THROW(Transaction inner(db), SqliteError);
    EXPECT_TRUE(db.in_transaction());
    outer.commit();
    EXPECT_EQ(count_rows(db, "t"), 1);
}

TEST(SqliteTest, CommitIsVisibleToASecondConnection) {
    TempDir dir;
    const std::string path = (dir / "shared.db").string();
    Database writer = Database::open(path);
    Database reader = Database::open(path);
    writer.exec("CREATE TABLE t(x BLOB)");
    const std::vector<std::uint8_t> value = {0xde, 0xad, 0, 0xef};
    {
        Transaction transaction(writer);
        writer.prepare_cached("INSERT INTO t VALUES (?)").bind_all(value).execute();
        // WAL: the reader keeps reading the last committed state meanwhile.
        EXPECT_EQ(count_rows(reader, "t"), 0);
        transaction.commit();
    }
    Statement select = reader.prepare("SELECT x FROM t");
    ASSERT_TRUE(select.step());
    EXPECT_EQ(select.column_blob(0), value);
    select.reset();

    writer = Database::open(":memory:");  // close, then reopen from disk
    Database reopened = Database::open(path);
    EXPECT_EQ(count_rows(reopened, "t"), 1);
}

TEST(SqliteTest, SecondWriterGetsBusyAfterItsTimeout) {
    TempDir dir;
    const std::string path = (dir / "busy.db").string();
    Database first = Database::open(path);
    first.exec("CREATE TABLE t(x)");
    OpenOptions impatient;
    impatient.busy_timeout_ms = 100;
    Database second = Database::open(path, impatient);

    {
        // A DEFERRED transaction that has not written takes no write lock.
        Transaction deferred(first, Transaction::Mode::kDeferred);
        Transaction other(second);
        other.commit();
    }

    Transaction holding(first);
    first.exec("INSERT INTO t VALUES (1)");
    const auto start = std::chrono::steady_clock::now();
    try {
        Transaction blocked(second);
        FAIL() << "two writers at once";
    } catch (const SqliteError& e) {
        EXPECT_TRUE(e.is_busy()) << e.what();
        EXPECT_FALSE(e.is_constraint_violation());
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, std::chrono::milliseconds(80));    // it did wait for the timeout...
    EXPECT_LT(waited, std::chrono::milliseconds(3000));  // ...its own, not the default 5 s
    EXPECT_FALSE(second.in_transaction());
    EXPECT_EQ(count_rows(second, "t"), 0);  // reads still work

    holding.commit();
    Transaction now_free(second);
    second.exec("INSERT INTO t VALUES (2)");
    now_free.commit();
    EXPECT_EQ(count_rows(first, "t"), 2);
}

// --- Database helpers ---

TEST(SqliteTest, CheckpointTruncatesTheWal) {
    TempDir dir;
    const std::string path = (dir / "wal.db").string();
    Database db = Database::open(path);
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(10000))");
    ASSERT_GT(fs::file_size(path + "-wal"), 10000u);
    db.checkpoint();
    EXPECT_EQ(fs::file_size(path + "-wal"), 0u);
    EXPECT_GT(fs::file_size(path), 10000u);
    EXPECT_EQ(count_rows(db, "t"), 1);

    Database memory = Database::open(":memory:");
    EXPECT_NO_THROW(memory.checkpoint());
}

TEST(SqliteTest, SizeBytesCountsPages) {
    Database db = Database::open(":memory:");
    const std::int64_t empty = db.size_bytes();
    EXPECT_EQ(empty, pragma_int(db, "page_count") * pragma_int(db, "page_size"));
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(100000))");
    EXPECT_GE(db.size_bytes(), empty + 100000);
}

TEST(SqliteTest, UserVersionRoundTrips) {
    Database db = Database::open(":memory:");
    EXPECT_EQ(db.user_version(), 0);
    db.set_user_version(42);
    EXPECT_EQ(db.user_version(), 42);
    {
        Transaction transaction(db);
        db.set_user_version(43);
        EXPECT_EQ(db.user_version(), 43);
    }
    EXPECT_EQ(db.user_version(), 42);
}

// --- Migrations ---

constexpr std::array<Migration, 3> kMigrations = {{
    {1, "CREATE TABLE a(id INTEGER PRIMARY KEY, name TEXT)"},
    {2, "ALTER TABLE a ADD COLUMN extra TEXT; INSERT INTO a(name, extra) VALUES ('seed', 'x')"},
    {5, "CREATE TABLE b(a_id INTEGER REFERENCES a(id))"},
}};

TEST(SqliteTest, MigrationsApplyInOrderOnce) {
    TempDir dir;
    const std::string path = (dir / "migrate.db").string();
    {
        Database db = Database::open(path);
        migrate(db, std::span(kMigrations).first(1));
        EXPECT_EQ(db.user_version(), 1);
        EXPECT_TRUE(table_exists(db, "a"));
        EXPECT_FALSE(table_exists(db, "b"));
    }
    Database db = Database::open(path);
    migrate(db, kMigrations);  // only 2 and 5 run
    EXPECT_EQ(db.user_version(), 5);
    EXPECT_TRUE(table_exists(db, "b"));
    EXPECT_EQ(count_rows(db, "a"), 1);

    migrate(db, kMigrations);  // no-op: the seed row is not inserted twice
    EXPECT_EQ(db.user_version(), 5);
    EXPECT_EQ(count_rows(db, "a"), 1);
    EXPECT_FALSE(db.in_transaction());
}

TEST(SqliteTest, FailingMigrationChangesNothing) {
    Database db = Database::open(":memory:");
    const std::array<Migration, 2> migrations = {{
        {1, "CREATE TABLE a(x)"},
        {2, "CREATE TABLE partial(y); INSERT INTO a VALUES (1); INSERT INTO missing VALUES (1)"},
    }};
    try {
        migrate(db, migrations);
        FAIL() << "broken migration applied";
    } catch (const SqliteError& e) {
        EXPECT_NE(e.message().find("schema version 2"), std::string::npos) << e.what();
        EXPECT_NE(e.message().find("no such table: missing"), std::string::npos) << e.what();
    }
    EXPECT_EQ(db.user_version(), 1);
    EXPECT_TRUE(table_exists(db, "a"));
    EXPECT_FALSE(table_exists(db, "partial"));
    EXPECT_EQ(count_rows(db, "a"), 0);
    EXPECT_FALSE(db.in_transaction());
}

TEST(SqliteTest, NewerDatabaseIsRefused) {
    Database db = Database::open(":memory:");
    db.set_user_version(7);
    try {
        migrate(db, kMigrations);
        FAIL() << "newer schema accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "database schema version 7 is newer than this program supports (5)");
    }
    EXPECT_EQ(db.user_version(), 7);
    EXPECT_FALSE(table_exists(db, "a"));
    EXPECT_THROW(migrate(db, {}), std::runtime_error);
}

TEST(SqliteTest, MigrationListMustBeStrictlyIncreasing) {
    Database db = Database::open(":memory:");
    const std::array<Migration, 2> descending = {{{2, "CREATE TABLE x(a)"}, {1, "SELECT 1"}}};
    const std::array<Migration, 2> repeated = {{{1, "CREATE TABLE x(a)"}, {1, "SELECT 1"}}};
    const std::array<Migration, 1> zero = {{{0, "CREATE TABLE x(a)"}}};
    EXPECT_THROW(migrate(db, descending), std::invalid_argument);
    EXPECT_THROW(migrate(db, repeated), std::invalid_argument);
    EXPECT_THROW(migrate(db, zero), std::invalid_argument);
    EXPECT_FALSE(table_exists(db, "x"));
    EXPECT_EQ(db.user_version(), 0);
}

}  // namespace
}  // namespace cipherpulse::store

namespace cipherpulse::store {
namespace {

// A private file is created 0600. Opening it again beside a live connection, and another
// process opening and closing it, leave the live connection's WAL in place and its writes
// visible.
TEST(SqlitePrivateFileTest, CreatedOwnerOnlyAndReopeningKeepsOtherConnectionsLocks) {
    cipherpulse::testing::TempDir dir;
    const std::string path = (dir.path() / "private.db").string();
    OpenOptions options;
    options.private_file = true;
    Database live = Database::open(path, options);
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    live.exec("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)");
    { Database again = Database::open(path, options); }  // same process, opened and closed
    ASSERT_TRUE(fs::exists(path + "-wal"));
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        try {
            Database other = Database::open(path, {});
            other.exec("SELECT COUNT(*) FROM t");
        } catch (...) {
            ::_exit(1);
        }
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_TRUE(fs::exists(path + "-wal")) << "another process removed the live WAL";
    live.exec("INSERT INTO t VALUES (2)");
    Database reader = Database::open(path, {});
    auto st = reader.prepare("SELECT COUNT(*) FROM t");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int64(0), 2) << "a write after the other process closed is visible";
}

}  // namespace
}  // namespace cipherpulse::store

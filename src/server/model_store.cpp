#include "server/model_store.h"

namespace cipherpulse::server {

namespace {
constexpr std::int64_t kDayMs = 86'400'000;
}

ModelAdd store_model(store::Database& db, const std::string& id, const std::string& document,
                     std::int64_t now_ms, bool replace) {
    auto existing = find_model(db, id);
    if (existing) {
        if (existing->document == document) {
            return ModelAdd::kSame;
        }
        if (!replace) {
            return ModelAdd::kConflict;
        }
        auto& update = db.prepare_cached(
            "UPDATE models SET document = ?, created_ms = ? WHERE id = ?");
        update.bind_all(document, now_ms, id);
        update.execute();
        return ModelAdd::kReplaced;
    }
    auto& insert =
        db.prepare_cached("INSERT INTO models (id, document, created_ms) VALUES (?, ?, ?)");
    insert.bind_all(id, document, now_ms);
    insert.execute();
    return ModelAdd::kCreated;
}

std::optional<StoredModel> find_model(store::Database& db, const std::string& id) {
    auto& st = db.prepare_cached("SELECT document, created_ms FROM models WHERE id = ?");
    st.bind(1, id);
    if (!st.step()) {
        return std::nullopt;
    }
    StoredModel m{id, st.column_text(0), st.column_int64(1)};
    st.reset();
    return m;
}

std::optional<std::int64_t> model_created_ms(store::Database& db, const std::string& id) {
    auto& st = db.prepare_cached("SELECT created_ms FROM models WHERE id = ?");
    st.bind(1, id);
    if (!st.step()) {
        return std::nullopt;
    }
    const std::int64_t created = st.column_int64(0);
    st.reset();
    return created;
}

std::vector<StoredModel> list_models(store::Database& db) {
    std::vector<StoredModel> out;
    auto& st = db.prepare_cached("SELECT id, document, created_ms FROM models ORDER BY id");
    while (st.step()) {
        out.push_back({st.column_text(0), st.column_text(1), st.column_int64(2)});
    }
    return out;
}

bool remove_model(store::Database& db, const std::string& id) {
    auto& st = db.prepare_cached("DELETE FROM models WHERE id = ?");
    st.bind(1, id);
    return st.execute() > 0;
}

void store_scoring_key(store::Database& db, const std::string& kid, const std::string& document,
                       std::int64_t token_id, std::int64_t now_ms) {
    auto& st = db.prepare_cached(
        "INSERT OR IGNORE INTO scoring_keys (kid, document, token_id, created_ms) "
        "VALUES (?, ?, ?, ?)");
    st.bind_all(kid, document, token_id, now_ms);
    st.execute();
}

std::optional<std::string> find_scoring_key(store::Database& db, const std::string& kid) {
    auto& st = db.prepare_cached("SELECT document FROM scoring_keys WHERE kid = ?");
    st.bind(1, kid);
    if (!st.step()) {
        return std::nullopt;
    }
    std::string doc = st.column_text(0);
    st.reset();
    return doc;
}

std::optional<std::int64_t> charge_scoring_budget(store::Database& db, std::int64_t token_id,
                                                  std::int64_t rows, std::int64_t rows_per_day,
                                                  std::int64_t now_ms, std::int64_t& left_before) {
    const std::int64_t day = now_ms / kDayMs;
    auto& find = db.prepare_cached("SELECT rows FROM scoring_usage WHERE token_id = ? AND day = ?");
    find.bind_all(token_id, day);
    std::int64_t used = 0;
    if (find.step()) {
        used = find.column_int64(0);
    }
    find.reset();
    left_before = std::max<std::int64_t>(0, rows_per_day - used);
    if (rows > left_before) {
        return std::nullopt;
    }
    auto& upsert = db.prepare_cached(
        "INSERT INTO scoring_usage (token_id, day, rows) VALUES (?, ?, ?) "
        "ON CONFLICT (token_id, day) DO UPDATE SET rows = rows + excluded.rows");
    upsert.bind_all(token_id, day, rows);
    upsert.execute();
    return left_before - rows;
}

}  // namespace cipherpulse::server

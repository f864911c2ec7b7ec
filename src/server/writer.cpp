#include "server/writer.h"

#include <spdlog/spdlog.h>

namespace cipherpulse::server {

Writer::Writer(store::Database db, std::size_t queue_capacity, std::size_t max_group)
    : db_(std::move(db)), capacity_(queue_capacity), max_group_(max_group) {
    thread_ = std::thread([this] { loop(); });
}

Writer::~Writer() {
    stop();
}

void Writer::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && !thread_.joinable()) {
            return;
        }
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

bool Writer::submit(std::shared_ptr<WriteJob> job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || queue_.size() >= capacity_) {
            return false;
        }
        queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
}

bool Writer::submit_always(std::shared_ptr<WriteJob> job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            return false;
        }
        queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
}

std::size_t Writer::queue_depth() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void Writer::loop() {
    for (;;) {
        std::deque<std::shared_ptr<WriteJob>> group;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;  // stopping and drained
            }
            while (!queue_.empty() && group.size() < max_group_) {
                group.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        run_group(group);
    }
}

void Writer::run_group(std::deque<std::shared_ptr<WriteJob>>& group) {
    std::vector<std::shared_ptr<WriteJob>> done;
    std::vector<std::pair<std::shared_ptr<WriteJob>, std::exception_ptr>> failed;
    try {
        store::Transaction tx(db_);
        for (auto& job : group) {
            db_.exec("SAVEPOINT job");
            try {
                job->run(db_);
                db_.exec("RELEASE job");
                done.push_back(job);
            } catch (...) {
                auto error = std::current_exception();
                db_.exec("ROLLBACK TO job");
                db_.exec("RELEASE job");
                job->rolled_back();
                failed.emplace_back(job, error);
            }
        }
        tx.commit();
    } catch (...) {
        // The transaction as a whole failed (disk full, I/O error): nothing of the group
        // is stored, so nobody may be told otherwise.
        auto error = std::current_exception();
        spdlog::error("database commit failed; {} jobs refused", group.size());
        for (auto it = done.rbegin(); it != done.rend(); ++it) {
            (*it)->rolled_back();  // newest first: undo logs build on each other
        }
        for (auto& job : done) {
            job->failed(error);
        }
        for (auto& [job, job_error] : failed) {
            job->failed(job_error);
        }
        return;
    }
    for (auto& job : done) {
        job->committed();
    }
    for (auto& [job, error] : failed) {
        job->failed(error);
    }
}

}  // namespace cipherpulse::server

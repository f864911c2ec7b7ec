// Writer: the one thread that writes the server database, in group-committed transactions.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "store/sqlite.h"

namespace cipherpulse::server {

// WriteJob is one unit of work for the writer. run() executes inside its own SAVEPOINT of
// a transaction shared with other queued jobs; if it throws, only its savepoint is rolled
// back, rolled_back() undoes its in-memory effects and failed() receives the exception. If
// the shared COMMIT fails, every job of the group gets rolled_back() and failed(). After a
// successful COMMIT each job gets committed(). Callbacks run on the writer thread.
class WriteJob {
  public:
    virtual ~WriteJob() = default;
    virtual void run(store::Database& db) = 0;
    virtual void rolled_back() {}
    virtual void committed() = 0;
    virtual void failed(std::exception_ptr error) = 0;
};

// Writer owns the write connection and a bounded queue of jobs. Thread-safe.
class Writer {
  public:
    // Starts the thread. `max_group` jobs at most share one transaction.
    Writer(store::Database db, std::size_t queue_capacity, std::size_t max_group = 64);
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    // Stops after running and committing every job already queued.
    ~Writer();

    // submit queues a job; returns false (and keeps nothing) when the queue is full or the
    // writer is stopping, so the caller can answer 503.
    bool submit(std::shared_ptr<WriteJob> job);
    // submit_wait queues a job even when the queue is full (for operator commands and the
    // sealer, which must not be shed); returns false only when stopping.
    bool submit_always(std::shared_ptr<WriteJob> job);
    std::size_t queue_depth() const;
    // stop drains the queue and joins the thread (idempotent).
    void stop();

  private:
    void loop();
    void run_group(std::deque<std::shared_ptr<WriteJob>>& group);

    store::Database db_;
    std::size_t capacity_;
    std::size_t max_group_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<WriteJob>> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

// CallJob runs `fn(db)` and hands its result (or exception) to a future once committed.
// Without in-memory effects to undo, it suits operator commands and simple writes.
template <class T>
class CallJob final : public WriteJob {
  public:
    explicit CallJob(std::function<T(store::Database&)> fn) : fn_(std::move(fn)) {}
    std::future<T> future() { return promise_.get_future(); }
    void run(store::Database& db) override { result_ = fn_(db); }
    void committed() override { promise_.set_value(std::move(*result_)); }
    void failed(std::exception_ptr error) override { promise_.set_exception(error); }

  private:
    std::function<T(store::Database&)> fn_;
    std::optional<T> result_;
    std::promise<T> promise_;
};

// run_write runs `fn` on the writer and waits for its committed result; rethrows its
// exception. Throws std::runtime_error if the writer is stopping.
template <class T>
T run_write(Writer& writer, std::function<T(store::Database&)> fn) {
    auto job = std::make_shared<CallJob<T>>(std::move(fn));
    auto result = job->future();
    if (!writer.submit_always(job)) {
        throw std::runtime_error("the database writer is stopping");
    }
    return result.get();
}

}  // namespace cipherpulse::server

#include "edge/ble_source.h"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "edge/heart_rate_measurement.h"

namespace cipherpulse::edge {
namespace {

constexpr const char* kBluezService = "org.bluez";
constexpr const char* kObjectManager = "org.freedesktop.DBus.ObjectManager";
constexpr const char* kPropertiesInterface = "org.freedesktop.DBus.Properties";
constexpr const char* kDeviceInterface = "org.bluez.Device1";
constexpr const char* kGattServiceInterface = "org.bluez.GattService1";
constexpr const char* kGattCharacteristicInterface = "org.bluez.GattCharacteristic1";

// The worker wakes at least this often to notice stop() while it waits on the bus.
constexpr int kPollSliceMs = 100;
constexpr std::chrono::seconds kStopNotifyTimeout{2};

using Properties = std::map<std::string, sdbus::Variant>;
using Interfaces = std::map<std::string, Properties>;
using ManagedObjects = std::map<sdbus::ObjectPath, Interfaces>;

template <class T>
std::optional<T> property(const Properties& properties, const std::string& key) {
    const auto it = properties.find(key);
    if (it == properties.end() || !it->second.containsValueOfType<T>()) {
        return std::nullopt;
    }
    return it->second.get<T>();
}

const Properties* interface_of(const ManagedObjects& objects, const std::string& path,
                               const std::string& interface) {
    const auto object = objects.find(sdbus::ObjectPath(path));
    if (object == objects.end()) {
        return nullptr;
    }
    const auto found = object->second.find(interface);
    return found == object->second.end() ? nullptr : &found->second;
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

std::int64_t now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Target is the device and characteristic one session uses.
struct Target {
    std::string device_path;
    std::string characteristic_path;
    std::string address;
    std::string name;
    bool connected = false;
};

// find_target returns the first 2A37 characteristic (in object path order) whose device
// passes the filters.
std::optional<Target> find_target(const ManagedObjects& objects, const BleSourceOptions& options) {
    for (const auto& [path, interfaces] : objects) {
        const auto characteristic = interfaces.find(kGattCharacteristicInterface);
        if (characteristic == interfaces.end()) {
            continue;
        }
        const auto uuid = property<std::string>(characteristic->second, "UUID");
        const auto service_path = property<sdbus::ObjectPath>(characteristic->second, "Service");
        if (!uuid || lower(*uuid) != kHeartRateMeasurementUuid || !service_path) {
            continue;
        }
        const Properties* service = interface_of(objects, *service_path, kGattServiceInterface);
        const auto device_path =
            service != nullptr ? property<sdbus::ObjectPath>(*service, "Device") : std::nullopt;
        const Properties* device =
            device_path ? interface_of(objects, *device_path, kDeviceInterface) : nullptr;
        if (device == nullptr) {
            continue;
        }
        Target target;
        target.device_path = *device_path;
        target.characteristic_path = path;
        target.address = property<std::string>(*device, "Address").value_or("");
        target.name = property<std::string>(*device, "Name")
                          .value_or(property<std::string>(*device, "Alias").value_or(""));
        target.connected = property<bool>(*device, "Connected").value_or(false);
        if (!options.address.empty() && lower(target.address) != lower(options.address)) {
            continue;
        }
        if (!options.name.empty() && target.name.find(options.name) == std::string::npos) {
            continue;
        }
        return target;
    }
    return std::nullopt;
}

}  // namespace

class BleSource::Impl {
  public:
    explicit Impl(BleSourceOptions options) : options_(std::move(options)) {
        if (options_.initial_backoff.count() <= 0 || options_.max_backoff.count() <= 0 ||
            options_.initial_backoff > options_.max_backoff) {
            throw std::invalid_argument(
                "BleSource: backoffs must be positive with initial_backoff <= max_backoff");
        }
        if (options_.max_queued == 0) {
            throw std::invalid_argument("BleSource: max_queued must be positive");
        }
        connection_ = sdbus::createSystemBusConnection();
        worker_ = std::thread([this] { run(); });
    }

    ~Impl() {
        stop();
        worker_.join();
    }

    std::optional<Reading> next() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
        if (stopped_) {
            return std::nullopt;
        }
        Reading reading = std::move(queue_.front());
        queue_.pop_front();
        return reading;
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopped_ = true;
            queue_.clear();
        }
        changed_.notify_all();
    }

  private:
    bool stopping() {
        std::lock_guard lock(mutex_);
        return stopped_;
    }

    // sleep_unless_stopped waits `duration`; false if stop() came first.
    bool sleep_unless_stopped(std::chrono::milliseconds duration) {
        std::unique_lock lock(mutex_);
        return !changed_.wait_for(lock, duration, [this] { return stopped_; });
    }

    void run() {
        auto backoff = options_.initial_backoff;
        while (!stopping()) {
            received_ = false;
            run_session();
            if (stopping()) {
                break;
            }
            if (received_) {
                backoff = options_.initial_backoff;
            }
            spdlog::info("ble: retrying in {} ms", backoff.count());
            if (!sleep_unless_stopped(backoff)) {
                break;
            }
            backoff = std::min(backoff * 2, options_.max_backoff);
        }
        spdlog::info("ble: source stopped");
    }

    // run_session finds, connects and listens until the device disconnects, a call fails
    // or stop() is called. Every failure is logged here; the caller backs off.
    void run_session() {
        try {
            auto root = sdbus::createProxy(*connection_, kBluezService, "/");
            ManagedObjects objects;
            root->callMethod("GetManagedObjects")
                .onInterface(kObjectManager)
                .storeResultsTo(objects);
            const auto target = find_target(objects, options_);
            if (!target) {
                spdlog::warn(
                    "ble: no device with a heart rate measurement characteristic "
                    "matches (address filter \"{}\", name filter \"{}\")",
                    options_.address, options_.name);
                return;
            }

            // Subscribe before connecting so that no disconnect or notification is missed.
            disconnected_ = false;
            auto device = sdbus::createProxy(*connection_, kBluezService, target->device_path);
            device->uponSignal("PropertiesChanged")
                .onInterface(kPropertiesInterface)
                .call([this](const std::string& interface, const Properties& changed,
                             const std::vector<std::string>&) {
                    on_device_changed(interface, changed);
                });
            device->finishRegistration();
            auto characteristic =
                sdbus::createProxy(*connection_, kBluezService, target->characteristic_path);
            characteristic->uponSignal("PropertiesChanged")
                .onInterface(kPropertiesInterface)
                .call([this](const std::string& interface, const Properties& changed,
                             const std::vector<std::string>&) {
                    on_value_changed(interface, changed);
                });
            characteristic->finishRegistration();

            if (!target->connected) {
                spdlog::info("ble: connecting device={} name=\"{}\"", target->address,
                             target->name);
                device->callMethod("Connect").onInterface(kDeviceInterface);
            }
            characteristic->callMethod("StartNotify").onInterface(kGattCharacteristicInterface);
            spdlog::info("ble: receiving notifications device={} characteristic={}",
                         target->address, target->characteristic_path);

            pump_until_disconnected_or_stopped();

            if (disconnected_) {
                spdlog::warn("ble: device disconnected device={}", target->address);
            } else {
                stop_notify(*characteristic);
            }
        } catch (const sdbus::Error& e) {
            spdlog::warn("ble: bluez call failed: {}: {}", e.getName(), e.getMessage());
        } catch (const std::exception& e) {
            spdlog::error("ble: session failed: {}", e.what());
        }
    }

    // pump_until_disconnected_or_stopped dispatches bus messages (running the signal
    // handlers on this thread) until the device disconnects or stop() is called.
    void pump_until_disconnected_or_stopped() {
        while (!disconnected_ && !stopping()) {
            while (!disconnected_ && connection_->processPendingRequest()) {
            }
            const auto poll_data = connection_->getEventLoopPollData();
            // poll_data's timeout is 0 when messages are already queued; otherwise sleep on
            // the socket for at most one slice so that stop() is noticed promptly.
            pollfd fd{poll_data.fd, poll_data.events, 0};
            ::poll(&fd, 1, poll_data.timeout_usec == 0 ? 0 : kPollSliceMs);
        }
    }

    static void stop_notify(sdbus::IProxy& characteristic) {
        try {
            characteristic.callMethod("StopNotify")
                .onInterface(kGattCharacteristicInterface)
                .withTimeout(kStopNotifyTimeout);
        } catch (const sdbus::Error& e) {
            spdlog::debug("ble: StopNotify failed: {}: {}", e.getName(), e.getMessage());
        }
    }

    void on_device_changed(const std::string& interface, const Properties& changed) {
        if (interface != kDeviceInterface) {
            return;
        }
        if (property<bool>(changed, "Connected") == false) {
            disconnected_ = true;
        }
    }

    void on_value_changed(const std::string& interface, const Properties& changed) {
        if (interface != kGattCharacteristicInterface || changed.count("Value") == 0) {
            return;
        }
        const auto value = property<std::vector<std::uint8_t>>(changed, "Value");
        if (!value) {
            spdlog::warn("ble: characteristic Value is not an array of bytes; ignored");
            return;
        }
        const std::int64_t t_ms = now_unix_ms();
        auto measurement = decode_heart_rate_measurement(*value);
        if (!measurement.ok()) {
            spdlog::warn("ble: notification ignored: {}", measurement.error().message);
            return;
        }
        received_ = true;
        push(to_reading(measurement.value(), t_ms));
    }

    void push(Reading reading) {
        {
            std::lock_guard lock(mutex_);
            if (stopped_) {
                return;
            }
            if (queue_.size() >= options_.max_queued) {
                queue_.pop_front();
                spdlog::warn("ble: consumer behind; dropped the oldest reading (queue {})",
                             options_.max_queued);
            }
            queue_.push_back(std::move(reading));
        }
        changed_.notify_all();
    }

    const BleSourceOptions options_;
    std::unique_ptr<sdbus::IConnection> connection_;

    // Shared with next()/stop(); changed_ is notified on every push and on stop.
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Reading> queue_;
    bool stopped_ = false;

    // Worker thread only (signal handlers run on it, inside processPendingRequest).
    bool disconnected_ = false;
    bool received_ = false;
    std::thread worker_;
};

BleSource::BleSource(BleSourceOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

BleSource::~BleSource() = default;

std::optional<Reading> BleSource::next() {
    return impl_->next();
}

void BleSource::stop() {
    impl_->stop();
}

}  // namespace cipherpulse::edge

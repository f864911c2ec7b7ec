// BLE heart-rate source for `cipherpulse-edge run --source ble`: receives Heart Rate
// Measurement notifications (GATT 0x2A37) from a chest strap or watch through BlueZ on the
// D-Bus system bus.
//
// The device must already be known to BlueZ with its GATT database resolved or cached (for
// instance paired once with bluetoothctl): BleSource does not scan or pair. It looks up the
// objects BlueZ exports (ObjectManager.GetManagedObjects on org.bluez "/"), picks the first
// org.bluez.GattCharacteristic1 with the 2A37 UUID whose device matches the filters,
// calls org.bluez.Device1.Connect, then GattCharacteristic1.StartNotify, and turns each
// PropertiesChanged of the characteristic's "Value" into a Reading stamped with the wall
// clock at receipt. When the device disconnects (Device1 "Connected" becomes false) or a
// call fails, it starts over with exponential backoff.
//
// The bus is the one DBUS_SYSTEM_BUS_ADDRESS names, else the standard system bus.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "edge/reading.h"

namespace cipherpulse::edge {

// BleSourceOptions configures a BleSource.
struct BleSourceOptions {
    // address: only a device whose Device1 "Address" equals this (case-insensitive, e.g.
    // "AA:BB:CC:DD:EE:FF"); empty accepts any.
    std::string address;
    // name: only a device whose Device1 "Name" contains this substring (case-sensitive);
    // empty accepts any.
    std::string name;
    // Reconnect backoff: the first retry waits initial_backoff, each further failure
    // doubles it up to max_backoff; a notification received resets it.
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{60000};
    // max_queued: readings held for next(); when the consumer falls behind by more, the
    // oldest is dropped (and a warning logged).
    std::size_t max_queued = 4096;
};

// BleSource is a Source of live BLE readings. A worker thread owns the D-Bus connection;
// next() and stop() may be called from any thread (next() by one consumer at a time), and
// the destructor stops the source and joins the worker. Payloads that fail to decode are
// logged and skipped; they never end the source. Not copyable or movable.
class BleSource final : public Source {
  public:
    // BleSource connects to the system bus and starts the worker, which finds and connects
    // to the device in the background (failures there are logged and retried, never thrown).
    // @throws std::invalid_argument if a backoff is not positive, initial_backoff >
    //         max_backoff, or max_queued is 0.
    // @throws sdbus::Error (a std::runtime_error) if the system bus cannot be reached.
    explicit BleSource(BleSourceOptions options);
    ~BleSource() override;

    BleSource(const BleSource&) = delete;
    BleSource& operator=(const BleSource&) = delete;

    // next blocks until a reading arrives and returns it, or returns nullopt once stop()
    // has been called (readings still queued then are discarded).
    std::optional<Reading> next() override;

    // stop ends the source: next() returns nullopt from now on, and the worker calls
    // StopNotify and exits. Thread-safe and idempotent; returns at once (a D-Bus call in
    // progress, such as BlueZ's Connect, is let finish by the worker).
    void stop();
    void interrupt() override { stop(); }

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cipherpulse::edge

// The built-in drivers.

#ifndef SKED_DRIVERS_BUILTIN_DRIVERS_H_
#define SKED_DRIVERS_BUILTIN_DRIVERS_H_

#include <memory>

#include "sked/driver.h"

namespace sked::drivers {

// Succeeds at once. Config: {} (or {"fail": true} to fail, for tests).
std::unique_ptr<Driver> NewNoopDriver();
// Waits on the engine's clock. Config: {"duration": "2s", "fail": false,
// "ignore_stop": false}; ignore_stop simulates a driver that will not stop.
std::unique_ptr<Driver> NewSleepDriver();
// Runs a command. See docs/drivers.md.
std::unique_ptr<Driver> NewShellDriver();

}  // namespace sked::drivers

#endif  // SKED_DRIVERS_BUILTIN_DRIVERS_H_

#include "drivers/builtin_drivers.h"
#include "sked/driver.h"

namespace sked {

Status DriverRegistry::Register(std::unique_ptr<Driver> driver) {
  const std::string name(driver->name());
  if (drivers_.count(name) > 0) {
    return AlreadyExistsError("a driver named '" + name + "' is already registered");
  }
  drivers_.emplace(name, std::move(driver));
  return Status::Ok();
}

Driver* DriverRegistry::Find(std::string_view name) const {
  auto it = drivers_.find(name);
  return it == drivers_.end() ? nullptr : it->second.get();
}

std::vector<std::string> DriverRegistry::Names() const {
  std::vector<std::string> out;
  out.reserve(drivers_.size());
  for (const auto& [name, driver] : drivers_) out.push_back(name);
  return out;
}

std::unique_ptr<DriverRegistry> DriverRegistry::WithBuiltins() {
  auto registry = std::make_unique<DriverRegistry>();
  (void)registry->Register(drivers::NewNoopDriver());
  (void)registry->Register(drivers::NewSleepDriver());
  (void)registry->Register(drivers::NewShellDriver());
  return registry;
}

}  // namespace sked

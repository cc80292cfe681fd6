#include "drivers/builtin_drivers.h"
#include "sked/driver.h"

namespace sked {

Status DriverRegistry::Register(std::unique_ptr<Driver> driver) {
  const std::string name(driver->name());
  if (drivers_.count(name) > 0) {
    return AlreadyExistsError("a driver named '" + name + "' is already registered");
  }
  drivers_.emplace(name, Entry{std::move(driver), ""});
  return Status::Ok();
}

Driver* DriverRegistry::Find(std::string_view name) const {
  auto it = drivers_.find(name);
  return it == drivers_.end() ? nullptr : it->second.driver.get();
}

std::vector<std::string> DriverRegistry::Names() const {
  std::vector<std::string> out;
  out.reserve(drivers_.size());
  for (const auto& [name, entry] : drivers_) out.push_back(name);
  return out;
}

std::string DriverRegistry::Origin(std::string_view name) const {
  auto it = drivers_.find(name);
  return it == drivers_.end() ? "" : it->second.origin;
}

std::string DriverRegistry::UnknownDriverMessage(std::string_view name) const {
  std::string known;
  for (const auto& [n, entry] : drivers_) known += (known.empty() ? "" : ", ") + n;
  std::string message = "unknown driver '" + std::string(name) + "' (registered: " + known + ")";
  if (!plugin_failures_.empty()) {
    message += "; plugins that failed to load: ";
    for (size_t i = 0; i < plugin_failures_.size(); ++i) {
      message += (i == 0 ? "" : "; ") + plugin_failures_[i].message();
    }
  }
  return message;
}

Status DriverRegistry::Refuse(Status status) {
  plugin_failures_.push_back(status);
  return status;
}

std::unique_ptr<DriverRegistry> DriverRegistry::WithBuiltins() {
  auto registry = std::make_unique<DriverRegistry>();
  (void)registry->Register(drivers::NewNoopDriver());
  (void)registry->Register(drivers::NewSleepDriver());
  (void)registry->Register(drivers::NewShellDriver());
  return registry;
}

}  // namespace sked

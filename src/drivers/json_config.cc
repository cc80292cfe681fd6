#include "drivers/json_config.h"

namespace sked::drivers {

Result<nlohmann::json> ParseConfigObject(std::string_view config,
                                         std::initializer_list<std::string_view> known) {
  nlohmann::json j = nlohmann::json::parse(config.empty() ? std::string_view("{}") : config,
                                           nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("config: not valid JSON");
  if (!j.is_object()) return InvalidArgumentError("config: must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || k == key;
    if (!ok) {
      std::string expected;
      for (std::string_view k : known) {
        if (!expected.empty()) expected += ", ";
        expected += k;
      }
      return InvalidArgumentError("config: unknown key '" + key + "' (expected " +
                                  (expected.empty() ? "none" : expected) + ")");
    }
  }
  return j;
}

Status CheckBool(const nlohmann::json& j, const char* key) {
  if (j.contains(key) && !j[key].is_boolean()) {
    return InvalidArgumentError(std::string("config.") + key + ": must be true or false");
  }
  return Status::Ok();
}

Result<Duration> ConfigDuration(const nlohmann::json& j, const char* key, Duration fallback) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_string()) {
    return InvalidArgumentError(std::string("config.") + key +
                                ": must be a duration string such as \"10s\"");
  }
  auto d = ParseDuration(j[key].get<std::string>());
  if (!d.ok()) return d.status().WithContext(std::string("config.") + key);
  return d;
}

}  // namespace sked::drivers

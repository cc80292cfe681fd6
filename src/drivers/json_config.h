// Helpers for drivers' JSON configs: parse, reject unknown keys, typed reads
// with messages that name the key. Only driver .cc files include this.

#ifndef SKED_DRIVERS_JSON_CONFIG_H_
#define SKED_DRIVERS_JSON_CONFIG_H_

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

#include "sked/status.h"
#include "sked/time.h"

namespace sked::drivers {

// Parses `config` as a JSON object whose keys are all in `known`.
Result<nlohmann::json> ParseConfigObject(std::string_view config,
                                         std::initializer_list<std::string_view> known);
// OK if `key` is absent or a boolean.
Status CheckBool(const nlohmann::json& j, const char* key);
// A duration written as a string ("10s"); `fallback` when absent.
Result<Duration> ConfigDuration(const nlohmann::json& j, const char* key, Duration fallback);

}  // namespace sked::drivers

#endif  // SKED_DRIVERS_JSON_CONFIG_H_

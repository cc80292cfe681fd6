/* Driver plugins: the C interface between sked and a shared library that
 * adds drivers (docs/plugins.md is the contract).
 *
 * A plugin is a shared object in the `[drivers] plugin_dir` folder that
 * exports the two functions declared at the end of this header. sked calls
 * sked_plugin_abi_version() first and refuses the plugin unless it returns
 * SKED_PLUGIN_ABI_VERSION; then it calls sked_plugin_register() once, which
 * registers the plugin's drivers through the host it is given.
 *
 * The interface is plain C so a plugin may be written in C, C++ or anything
 * that can export C functions, with any compiler. Every struct here is part
 * of the ABI: a change to any of them bumps SKED_PLUGIN_ABI_VERSION. */

#ifndef SKED_PLUGIN_H_
#define SKED_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface. A plugin reports the version it was built
 * against; sked loads it only when that equals its own. */
#define SKED_PLUGIN_ABI_VERSION 1u

/* One run, as a driver's execute() sees it. Everything it points to is valid
 * until execute() returns. The functions are called with this struct. */
typedef struct sked_plugin_run {
  int64_t run_id;
  const char* job_name; /* NUL-terminated */
  int32_t attempt;      /* 1 for the first, 2 for the first retry, ... */
  /* The fire this run is for, in microseconds since the Unix epoch (UTC). */
  int64_t scheduled_for_unix_us;
  /* The job's config: JSON, already accepted by validate(); not
   * NUL-terminated, config_len bytes. */
  const char* config;
  size_t config_len;

  /* Nonzero once the run must stop (cancelled, timed out, sked shutting
   * down). Cheap: poll it. */
  int (*stop_requested)(const struct sked_plugin_run* run);
  /* Waits up to timeout_ms milliseconds on sked's clock, returning early when
   * a stop is requested; returns nonzero if one is. Use it instead of
   * sleeping. */
  int (*wait_for_stop)(const struct sked_plugin_run* run, int64_t timeout_ms);
  /* Appends bytes to the run's output (watchers see them live). sked keeps
   * the tail of the output, at most `[retention] max_output` bytes, and marks
   * it truncated; call it as often as needed. */
  void (*write_output)(const struct sked_plugin_run* run, const char* data, size_t len);
  /* Why the run failed, shown as its error (the last call wins). */
  void (*set_error)(const struct sked_plugin_run* run, const char* message, size_t len);
  /* The run's exit code, if the work has one. */
  void (*set_exit_code)(const struct sked_plugin_run* run, int32_t code);
  /* A JSON value stored as the run's result; ignored unless it is valid JSON. */
  void (*set_result)(const struct sked_plugin_run* run, const char* json, size_t len);

  void* host; /* sked's; do not touch */
} sked_plugin_run;

/* What execute() returns. */
#define SKED_PLUGIN_RUN_SUCCEEDED 0
#define SKED_PLUGIN_RUN_FAILED 1

/* One driver. sked copies the strings when it is registered; `data` is
 * passed back to validate() and execute() as is. */
typedef struct sked_plugin_driver {
  /* 1-64 characters of a-z, 0-9, '_' and '-'; unique among all drivers. */
  const char* name;
  const char* description; /* one line */
  /* The config's JSON Schema as a JSON object, or NULL (nothing said). */
  const char* config_schema;
  void* data;

  /* Checks a job's config (JSON text, config_len bytes, not NUL-terminated)
   * when a job is created or changed. Returns 0 when it is acceptable; else
   * nonzero with a message naming the key written to `error` (at most
   * error_size bytes including the NUL). Called from any thread, often
   * concurrently; must be quick and must not block. */
  int (*validate)(void* data, const char* config, size_t config_len, char* error,
                  size_t error_size);

  /* Runs one run to its end, or until a stop is requested, and returns
   * SKED_PLUGIN_RUN_SUCCEEDED or SKED_PLUGIN_RUN_FAILED. Called from sked's
   * worker threads, up to `[scheduler] workers` at once. */
  int (*execute)(void* data, const sked_plugin_run* run);
} sked_plugin_driver;

/* What sked gives sked_plugin_register(); valid only during that call. */
typedef struct sked_plugin_host {
  uint32_t abi_version; /* SKED_PLUGIN_ABI_VERSION of the loading sked */
  /* Registers a driver; returns 0, or nonzero when sked refuses it (a bad or
   * taken name, a config_schema that is not a JSON object, a missing
   * callback), in which case the plugin is refused as a whole. */
  int (*register_driver)(const struct sked_plugin_host* host, const sked_plugin_driver* driver);
  void* host; /* sked's; do not touch */
} sked_plugin_host;

#if defined(__GNUC__)
#define SKED_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SKED_PLUGIN_EXPORT
#endif

/* The two functions a plugin exports. */
/* Returns SKED_PLUGIN_ABI_VERSION as the plugin saw it when it was built. */
SKED_PLUGIN_EXPORT uint32_t sked_plugin_abi_version(void);
/* Registers the plugin's drivers; returns 0, or nonzero to refuse loading. */
SKED_PLUGIN_EXPORT int sked_plugin_register(const sked_plugin_host* host);

#ifdef __cplusplus
}
#endif

#endif /* SKED_PLUGIN_H_ */

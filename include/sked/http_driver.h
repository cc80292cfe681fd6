// The `http` driver (docs/drivers.md): one HTTP(S) request per run through
// libcurl; the run succeeds when the response status is one the job expects.
// Kept out of DriverRegistry::WithBuiltins so that a program embedding the
// engine links libcurl only when it registers this driver.

#ifndef SKED_HTTP_DRIVER_H_
#define SKED_HTTP_DRIVER_H_

#include <memory>

#include "sked/driver.h"

namespace sked {

std::unique_ptr<Driver> MakeHttpDriver();

}  // namespace sked

#endif  // SKED_HTTP_DRIVER_H_

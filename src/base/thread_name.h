// Names the calling thread (as `top -H`, `ps -L`, gdb and perf show it), so
// an operator can tell sked's threads apart in a process that embeds it.
// Linux keeps at most 15 characters; a longer name is cut.

#ifndef SKED_BASE_THREAD_NAME_H_
#define SKED_BASE_THREAD_NAME_H_

#include <pthread.h>

#include <string>

namespace sked {

inline void SetThreadName(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace sked

#endif  // SKED_BASE_THREAD_NAME_H_

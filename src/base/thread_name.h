// Names a thread (as `top -H`, `ps -L`, gdb and perf show it), so an
// operator can tell sked's threads apart in a process that embeds it. Named
// by its creator, right after creating it: the name is there once the
// service's Start() returns. Linux keeps at most 15 characters; a longer
// name is cut.

#ifndef SKED_BASE_THREAD_NAME_H_
#define SKED_BASE_THREAD_NAME_H_

#include <pthread.h>

#include <string>
#include <thread>

namespace sked {

inline void NameThread(std::thread& thread, const std::string& name) {
  (void)pthread_setname_np(thread.native_handle(), name.substr(0, 15).c_str());
}

}  // namespace sked

#endif  // SKED_BASE_THREAD_NAME_H_

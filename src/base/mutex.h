// Mutex and MutexLock: std::mutex and std::unique_lock with clang's thread
// safety annotations, so `-Wthread-safety` checks that state marked
// SKED_GUARDED_BY(mu) is only touched with `mu` held (LevelDB's port::Mutex
// and thread_annotations.h are the model). Under g++ the annotations are empty.

#ifndef SKED_BASE_MUTEX_H_
#define SKED_BASE_MUTEX_H_

#include <mutex>

#if defined(__clang__)
#define SKED_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SKED_THREAD_ANNOTATION(x)
#endif

#define SKED_CAPABILITY(x) SKED_THREAD_ANNOTATION(capability(x))
#define SKED_SCOPED_CAPABILITY SKED_THREAD_ANNOTATION(scoped_lockable)
#define SKED_GUARDED_BY(x) SKED_THREAD_ANNOTATION(guarded_by(x))
#define SKED_PT_GUARDED_BY(x) SKED_THREAD_ANNOTATION(pt_guarded_by(x))
#define SKED_REQUIRES(...) SKED_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define SKED_EXCLUDES(...) SKED_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define SKED_ACQUIRED_BEFORE(...) SKED_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define SKED_ACQUIRE(...) SKED_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SKED_RELEASE(...) SKED_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define SKED_TRY_ACQUIRE(...) SKED_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define SKED_ASSERT_CAPABILITY(x) SKED_THREAD_ANNOTATION(assert_capability(x))
#define SKED_NO_THREAD_SAFETY_ANALYSIS SKED_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace sked {

class SKED_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() SKED_ACQUIRE() { mu_.lock(); }
  void Unlock() SKED_RELEASE() { mu_.unlock(); }
  bool TryLock() SKED_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds the mutex: for a predicate a
  // condition variable calls with the lock held (a lambda is analysed on its
  // own). Checks nothing at run time.
  void AssertHeld() const SKED_ASSERT_CAPABILITY(this) {}

  // For std::condition_variable and Clock::AwaitWithDeadline, through MutexLock.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope; Unlock()/Lock() release and take it again
// within the scope (for calls that must not run under the lock).
class SKED_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SKED_ACQUIRE(mu) : lock_(mu.native()) {}
  // Takes over a mutex the caller has locked already (released at scope end).
  MutexLock(Mutex& mu, std::adopt_lock_t) SKED_REQUIRES(mu) : lock_(mu.native(), std::adopt_lock) {}
  ~MutexLock() SKED_RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() SKED_RELEASE() { lock_.unlock(); }
  void Lock() SKED_ACQUIRE() { lock_.lock(); }

  // For waits: a condition variable or a Clock releases and retakes it.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace sked

#endif  // SKED_BASE_MUTEX_H_

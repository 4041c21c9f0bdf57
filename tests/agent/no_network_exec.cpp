// no_network_exec PROGRAM [ARGS...]: runs PROGRAM where network sockets are impossible.
// It sets PR_SET_NO_NEW_PRIVS and installs a seccomp-BPF filter under which socket() fails with
// EPERM for every address family except AF_UNIX (io_uring, which could open sockets behind the
// filter's back, is refused too), then execs PROGRAM. The filter is inherited by every child.
//
// no_network_exec --check: exits 0 when, under the filter, socket(AF_INET) and socket(AF_INET6)
// fail with EPERM while socket(AF_UNIX) still works, 1 otherwise. Exit code 77 (both modes):
// seccomp is not available here, the caller should skip.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace {

#if defined(__x86_64__)
constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
#error "no_network_exec: add this architecture's AUDIT_ARCH value"
#endif

int InstallFilter() {
  constexpr unsigned kErrno = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  sock_filter filter[] = {
    // A syscall made under another ABI (e.g. 32-bit int 0x80 on x86_64) has other numbers:
    // kill rather than guess.
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
#if defined(__x86_64__)
    // x32 syscalls share the arch value but set bit 30: refuse them all.
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, kErrno),
#endif
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, kErrno),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    // socket(domain, ...): args[0]'s low 32 bits (little-endian) hold the domain.
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, kErrno),
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return errno;
  return 0;
}

int Check() {
  int bad = 0;
  for (int family : {AF_INET, AF_INET6}) {
    const int fd = socket(family, SOCK_STREAM, 0);
    if (fd >= 0 || errno != EPERM) {
      std::fprintf(stderr, "no_network_exec: socket(%d) was not refused\n", family);
      bad = 1;
    }
    if (fd >= 0) close(fd);
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) {
    std::fprintf(stderr, "no_network_exec: socket(AF_UNIX) failed: %s\n", std::strerror(errno));
    bad = 1;
  } else {
    close(fd);
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_network_exec --check | PROGRAM [ARGS...]\n");
    return 2;
  }
  if (const int err = InstallFilter(); err != 0) {
    std::fprintf(stderr, "no_network_exec: seccomp unavailable: %s\n", std::strerror(err));
    return 77;
  }
  if (std::strcmp(argv[1], "--check") == 0) return Check();
  execvp(argv[1], argv + 1);
  std::fprintf(stderr, "no_network_exec: cannot run %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}

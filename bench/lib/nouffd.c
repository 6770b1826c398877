/* Runs TARGET with the userfaultfd(2) system call refused (EPERM), as Docker's default seccomp
   profile refuses it: the same binary with and without the agent's userfaultfd, side by side.

   cp SWARMKEEPER /tmp/sk-refused
   gcc -O2 -DTARGET='"/tmp/sk-refused"' -o /tmp/sk-nouffd bench/lib/nouffd.c
   SWARMKEEPER=SWARMKEEPER SWARMKEEPER_ALSO=/tmp/sk-nouffd NODE=layers bench/agent-event-burst.sh

   (agent_burst.py measures the mappings of the binary the process runs, /proc/PID/exe; its
   CACHE setting then acts on the wrapper's file, not on TARGET's.) x86_64 only. */
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
int main(int argc, char **argv) {
  (void)argc;
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_userfaultfd, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = 4, .filter = f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) return 126;
  argv[0] = TARGET;
  execv(TARGET, argv);
  return 127;
}

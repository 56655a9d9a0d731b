// The least a stage can cost (issue 14's yardstick): bench/startup.sh times
// it beside slicebox and bwrap in the same run.
// The floor: the least a rootless stage with N read-only slices can cost. It does what a stage
// of slicebox does with its default options, with no checks, no planning and no store:
// userns+mntns+pidns+ipcns+utsns, maps, a tmpfs root, /usr /etc read-only, merged-usr links,
// a fresh /proc and /tmp, /dev/{null,zero,urandom} bound, N read-only binds, pivot_root, exec.
// usage: floor-sandbox SLICE_DIR... -- CMD ARGS   (each SLICE_DIR is bound at /opt/s<i>)
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char **slices, **cmd;
static int nslices, sync_pipe[2];
static uid_t uid;
static gid_t gid;

static void die(const char *what) { perror(what); _exit(125); }
static void put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
  close(fd);
}
static void bind_ro(const char *src, const char *dst) {
  if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL)) die(dst);
  if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL)) die(dst);
}
static void touch(const char *p) { int fd = open(p, O_CREAT | O_WRONLY, 0644); if (fd < 0) die(p); close(fd); }

static int child(void *arg) {
  (void)arg;
  char c, buf[64];
  if (read(sync_pipe[0], &c, 1) != 1) die("sync");
  if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL)) die("slave");
  if (mount("tmpfs", "/mnt", "tmpfs", 0, "mode=0755")) die("root tmpfs");  // the new root
  if (chdir("/mnt")) die("chdir");
  const char *dirs[] = {"usr", "etc", "proc", "dev", "tmp", "opt", "oldroot"};
  for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir(dirs[i], 0755);
  bind_ro("/usr", "usr");
  bind_ro("/etc", "etc");
  if (symlink("usr/bin", "bin") || symlink("usr/lib", "lib") || symlink("usr/lib64", "lib64") ||
      symlink("usr/sbin", "sbin")) die("symlink");
  if (mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")) die("tmp");
  if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID, "mode=0755")) die("dev");
  const char *nodes[] = {"null", "zero", "urandom"};
  for (unsigned i = 0; i < 3; i++) {
    char src[32], dst[32];
    snprintf(src, sizeof src, "/dev/%s", nodes[i]);
    snprintf(dst, sizeof dst, "dev/%s", nodes[i]);
    touch(dst);
    if (mount(src, dst, NULL, MS_BIND, NULL)) die(dst);
  }
  for (int i = 0; i < nslices; i++) {
    snprintf(buf, sizeof buf, "opt/s%d", i + 1);
    mkdir(buf, 0755);
    bind_ro(slices[i], buf);
  }
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) die("proc");
  if (syscall(SYS_pivot_root, ".", "oldroot")) die("pivot_root");
  if (umount2("/oldroot", MNT_DETACH)) die("umount oldroot");
  rmdir("/oldroot");
  if (chdir("/")) die("chdir /");
  pid_t pid = fork();  // pid 1 stays to reap, as in a real stage
  if (pid < 0) die("fork");
  if (pid == 0) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    execvp(cmd[0], cmd);
    die("exec");
  }
  int st;
  if (waitpid(pid, &st, 0) < 0) die("wait");
  _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(int argc, char **argv) {
  int i = 1;
  slices = argv + 1;
  while (i < argc && strcmp(argv[i], "--")) i++;
  if (i >= argc - 1) { fprintf(stderr, "usage: floor DIR... -- CMD\n"); return 2; }
  nslices = i - 1;
  cmd = argv + i + 1;
  uid = getuid(), gid = getgid();
  if (pipe(sync_pipe)) die("pipe");
  static char stack[1 << 16];
  int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
  if (pid < 0) die("clone");
  char path[64], map[64];
  snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
  put(path, "deny");
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  snprintf(map, sizeof map, "%u %u 1", uid, uid);
  put(path, map);
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  snprintf(map, sizeof map, "%u %u 1", gid, gid);
  put(path, map);
  if (write(sync_pipe[1], "x", 1) != 1) die("sync");
  int st;
  if (waitpid(pid, &st, 0) < 0) die("wait");
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// What the overlay mount of a layered stage costs by itself (issue 16):
// bench/layer-depth.sh runs it beside the stages it times, so the claim
// "a stage on N layers costs the stage on the host's base plus the overlay
// mount" can be checked against a figure of the mount alone.
//
// In a fresh user and mount namespace (rootless, as a stage is), it does
// what src/runtime/exec/overlay.rs does for one stage, ROUNDS times:
//   tmpfs     fsopen("tmpfs"), mode=0755, create, fsmount; mkdirat and open
//             upper/ and work/ in it
//   overlay   fsopen("overlay"), one fsconfig(FSCONFIG_SET_FD, "lowerdir+")
//             per layer (topmost first), upperdir, workdir, userxattr,
//             create, fsmount; then every fd closed (a detached mount goes
//             away with its last fd)
// and prints the medians in µs: "layers N tmpfs T overlay O total S".
// The layer dirs are opened once (O_PATH) before the rounds, and are not
// timed.
// usage: overlay-probe ROUNDS LAYER_DIR...   (LAYER_DIR topmost first)
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef FSCONFIG_SET_FLAG
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_SET_FD 5
#define FSCONFIG_CMD_CREATE 6
#endif
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4

static void die(const char *what) { perror(what); exit(1); }
static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}
static int fsopen_(const char *fs) { return (int)syscall(SYS_fsopen, fs, 1 /* CLOEXEC */); }
static void cfg(int fd, unsigned cmd, const char *key, const void *value, int aux) {
  if (syscall(SYS_fsconfig, fd, cmd, key, value, aux)) die(key ? key : "fsconfig create");
}
static int fsmount_(int fd) {
  int m = (int)syscall(SYS_fsmount, fd, 1 /* CLOEXEC */, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (m < 0) die("fsmount");
  return m;
}
static void put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
  close(fd);
}
static int cmp(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}
static long median(long *v, int n) {
  qsort(v, n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: overlay-probe ROUNDS LAYER_DIR...\n"); return 2; }
  int rounds = atoi(argv[1]), nlayers = argc - 2;
  int *layers = calloc(nlayers, sizeof *layers);
  long *t_tmpfs = calloc(rounds, sizeof(long)), *t_overlay = calloc(rounds, sizeof(long)),
       *t_total = calloc(rounds, sizeof(long));
  if (!layers || !t_tmpfs || !t_overlay || !t_total || rounds < 1) die("args");
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS)) die("unshare");
  char map[64];
  snprintf(map, sizeof map, "0 %u 1", uid);
  put("/proc/self/uid_map", map);
  put("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "0 %u 1", gid);
  put("/proc/self/gid_map", map);
  // Opened in the new mount namespace: OverlayFS clones each lower path's
  // mount, and refuses one of another namespace ("failed to clone lowerpath").
  for (int i = 0; i < nlayers; i++)
    if ((layers[i] = open(argv[i + 2], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die(argv[i + 2]);

  for (int r = 0; r < rounds; r++) {
    long t0 = now_ns();
    int tc = fsopen_("tmpfs");
    if (tc < 0) die("fsopen tmpfs");
    cfg(tc, FSCONFIG_SET_STRING, "mode", "0755", 0);
    cfg(tc, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
    int scratch = fsmount_(tc);
    close(tc);
    if (mkdirat(scratch, "upper", 0755) || mkdirat(scratch, "work", 0755)) die("mkdirat");
    int upper = openat(scratch, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int work = openat(scratch, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (upper < 0 || work < 0) die("openat");
    long t1 = now_ns();
    int oc = fsopen_("overlay");
    if (oc < 0) die("fsopen overlay");
    for (int i = 0; i < nlayers; i++) cfg(oc, FSCONFIG_SET_FD, "lowerdir+", NULL, layers[i]);
    cfg(oc, FSCONFIG_SET_FD, "upperdir", NULL, upper);
    cfg(oc, FSCONFIG_SET_FD, "workdir", NULL, work);
    cfg(oc, FSCONFIG_SET_FLAG, "userxattr", NULL, 0);
    cfg(oc, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
    int root = fsmount_(oc);
    close(oc);
    close(upper);
    close(work);
    close(scratch);
    close(root);
    long t2 = now_ns();
    t_tmpfs[r] = t1 - t0;
    t_overlay[r] = t2 - t1;
    t_total[r] = t2 - t0;
  }
  printf("layers %d tmpfs %.1f overlay %.1f total %.1f\n", nlayers, median(t_tmpfs, rounds) / 1e3,
         median(t_overlay, rounds) / 1e3, median(t_total, rounds) / 1e3);
  return 0;
}

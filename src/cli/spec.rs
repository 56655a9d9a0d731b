//! Every command and flag is defined once, here. The parser, `--help`, the
//! bash `help` text and docs/builtins.md all come from these tables.

pub struct OptionSpec {
    pub long: &'static str,
    /// The value's placeholder; `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptionSpec],
    /// Everything after the first operand belongs to it (the payload's argv).
    pub options_end_at_operand: bool,
    pub details: &'static str,
}

const HELP: OptionSpec = OptionSpec {
    long: "help",
    value: None,
    help: "show this help and exit",
};

const JSON: OptionSpec = OptionSpec {
    long: "json",
    value: None,
    help: "print JSON instead of text",
};

pub const SANDBOX: CommandSpec = CommandSpec {
    name: "sandbox",
    usage: "sandbox [OPTIONS] [--] [COMMAND [ARG...]]",
    summary: "Run COMMAND in its own small container built from slices.",
    options: &[
        OptionSpec {
            long: "slice",
            value: Some("REF[:MOUNTPOINT]"),
            help: "mount a stored slice read-only at its mount point (or MOUNTPOINT); repeatable",
        },
        OptionSpec {
            long: "layer",
            value: Some("NAME"),
            help: "make the root an OverlayFS of stored layers NAME (layer-add), in place of the host's base; repeatable, bottom first",
        },
        OptionSpec {
            long: "upper",
            value: Some("DIR"),
            help: "with --layer or --image, keep what the stage changes in DIR (OverlayFS's upper dir; DIR.work beside it is its work dir)",
        },
        OptionSpec {
            long: "image",
            value: Some("NAME"),
            help: "as --layer NAME (below any --layer), and take the image's Entrypoint, Cmd, Env, WorkingDir and User where no option says otherwise",
        },
        OptionSpec {
            long: "bind",
            value: Some("SRC[:DST]"),
            help: "show host path SRC writable at DST (default: SRC's own path); repeatable",
        },
        OptionSpec {
            long: "ro-bind",
            value: Some("SRC[:DST]"),
            help: "show host path SRC read-only at DST (default: SRC's own path); repeatable",
        },
        OptionSpec {
            long: "tmpfs",
            value: Some("DST[:size=N,mode=M]"),
            help: "mount a fresh writable tmpfs at DST (size in bytes with K, M, G; mode octal); repeatable",
        },
        OptionSpec {
            long: "dev",
            value: None,
            help: "give the stage a private devpts: /dev/pts and /dev/ptmx",
        },
        OptionSpec {
            long: "net",
            value: Some("host|none"),
            help: "share the host's network (default) or get only a loopback interface",
        },
        OptionSpec {
            long: "chdir",
            value: Some("DIR"),
            help: "start COMMAND in DIR (default: the current directory)",
        },
        OptionSpec {
            long: "no-cwd",
            value: None,
            help: "do not show the current directory inside; start in / (or --chdir)",
        },
        OptionSpec {
            long: "rw-cwd",
            value: None,
            help: "show the current directory writable, not read-only",
        },
        OptionSpec {
            long: "fd",
            value: Some("N[=M]"),
            help: "pass descriptor N through (as M); all but 0, 1, 2 are closed otherwise; repeatable",
        },
        OptionSpec {
            long: "uid",
            value: Some("N"),
            help: "run COMMAND as user id N inside (0 looks like root, without its power)",
        },
        OptionSpec {
            long: "gid",
            value: Some("N"),
            help: "run COMMAND as group id N inside",
        },
        OptionSpec {
            long: "allow-userns",
            value: None,
            help: "let COMMAND make user namespaces (nested containers: unshare -U, bwrap)",
        },
        OptionSpec {
            long: "seccomp-fd",
            value: Some("N"),
            help: "install the compiled BPF program read from descriptor N in place of the default filter",
        },
        OptionSpec {
            long: "hostname",
            value: Some("NAME"),
            help: "set the stage's host name",
        },
        OptionSpec {
            long: "timeout",
            value: Some("DURATION"),
            help: "kill the stage after DURATION (e.g. 30, 1.5s, 500ms, 2m, 1h) and exit 124",
        },
        OptionSpec {
            long: "rlimit",
            value: Some("NAME=SOFT[:HARD]"),
            help: "set a resource limit (nofile, nproc, as, data, stack, cpu, fsize, core, memlock); repeatable",
        },
        OptionSpec {
            long: "out",
            value: Some("DIR=NAME"),
            help: "make DIR writable; after exit 0, store its content as slice NAME at DIR",
        },
        OptionSpec {
            long: "cache",
            value: None,
            help: "with --out and --net none: reuse the output of an earlier run with the same inputs",
        },
        OptionSpec {
            long: "on",
            value: Some("HOST"),
            help: "run the stage on HOST (ssh HOST slicebox serve --stdio, or SLICEBOX_RSH): only the slices HOST lacks are sent",
        },
        OptionSpec {
            long: "ship",
            value: Some("DIR"),
            help: "with --on, send DIR too, shown read-only at its own path; repeatable",
        },
        OptionSpec {
            long: "remote-store",
            value: Some("PATH"),
            help: "with --on, use the store PATH on HOST (default: the remote user's store)",
        },
        OptionSpec {
            long: "limit",
            value: Some("KEY=VALUE"),
            help: "a limit on what --out stores and --cache hashes, as slice-add's --limit; repeatable",
        },
        OptionSpec {
            long: "env",
            value: Some("NAME=VALUE"),
            help: "set an environment variable; repeatable",
        },
        OptionSpec {
            long: "unsetenv",
            value: Some("NAME"),
            help: "remove an environment variable; repeatable",
        },
        OptionSpec {
            long: "clearenv",
            value: None,
            help: "start from an empty environment (PATH: the slices' bin/, then /usr/local/bin:/usr/bin:/bin)",
        },
        OptionSpec {
            long: "keep-env",
            value: Some("NAME"),
            help: "with --clearenv or --cache, keep the caller's NAME; repeatable",
        },
        HELP,
    ],
    options_end_at_operand: true,
    details: "\
COMMAND sees the host's /usr, /bin, /lib*, /sbin and /etc read-only, each
slice read-only at its mount point, each --bind and --ro-bind, each
--tmpfs, the current directory read-only (--rw-cwd: writable) at its own
path, a fresh /tmp, a fresh /proc and a minimal /dev (with --dev, also a
devpts of its own). Nothing else of the host's files is visible. A
current directory that is /, /tmp, or under /proc, /dev or /sys is not
shown (a note says so) and COMMAND starts in /. Without COMMAND, $SHELL
(or /bin/sh) runs inside, interactive on a terminal.

--layer NAME: the root is an OverlayFS of the layers NAME's layer-add
stored (an image's, bottom first; several --layer stack in order, the
first at the bottom), with an upper dir on a tmpfs of the stage's own:
the root is writable, and what COMMAND changes there is gone when it
ends (with --upper DIR, what it changes is kept in DIR, whiteouts and
opaque dirs included, and layer-add --from-upper DIR NAME makes a layer
of it; DIR.work beside it is OverlayFS's work dir). None of the host's
base dirs is shown; everything else (slices,
binds, /proc, /dev, /tmp, the working directory) is mounted over the
layers as over the host's base. Files have the layer's modes (setuid and
setgid dropped) and belong to the caller (to root with --uid 0),
whatever owner the layer recorded.

--image NAME: NAME's layers are the bottom of the root (any --layer goes
on top), and the image config layer-add kept fills in what the command
line leaves out, as docker run does: COMMAND is the Entrypoint followed
by the operands, or by Cmd when there are none; Env is set over the
caller's environment (--env and --unsetenv still come last); WorkingDir
is the start dir unless --chdir; User (UID[:GID] or root; a uid alone
has gid 0) gives --uid and --gid unless either is given. A user named
otherwise is refused: give --uid and --gid.

Mount points are resolved inside the stage and never through a symlink,
except that a --bind or --ro-bind destination that is (or goes through) a
symlink of the stage binds over what it points to, resolved inside the
stage; nothing is created on the host. Parents are mounted before children,
whatever the order of the options; a mount point missing in a read-only
dir is made in a tmpfs over that dir that shows the same entries. A missing bind source or a symlink on
the way to a mount point fails with 125 and names the path. Two of
--slice, --bind, --ro-bind, --tmpfs and --out at one mount point are a
usage error (2) that names both; any of them may cover a host dir such as
/etc or the working directory.

The environment is the caller's (with --clearenv, and always with
--cache, only the variables named by --keep-env), then PATH: each
slice's top-level bin/ directory at its mount point, in --slice order,
ahead of the caller's PATH (or of /usr/local/bin:/usr/bin:/bin when
there is none), then each slice's variables in --slice order, where
${NAME} is NAME's value so far (so 'PATH=/opt/b/bin:${PATH}' of a later
slice comes first; an unset NAME that is a whole ':'-separated element
drops with its ':'), then SLICEBOX_STAGE=1 and SLICEBOX_SLICES (the
slices' names) for a prompt to test, then --env (--env PATH=... replaces
all of PATH), then --unsetenv.

COMMAND runs in new user, mount, pid, ipc and uts namespaces (and net with
--net none), in a session of its own, with a session keyring of its own,
with no capabilities and no_new_privs. --uid and --gid put it in a user
namespace nested in the stage's, entered after setup: uid 0 there looks
like root and has no power over the stage's mounts. Only stdin, stdout,
stderr and --fd descriptors reach it. Its stdin, stdout and stderr are
the caller's own, except that a terminal is replaced by a pty of the
stage's own, relayed by sandbox: ^C and the window size reach COMMAND, ^Z
does not suspend it, and the terminal's modes are restored afterwards.
The stage dies with sandbox (or the shell running the builtin), and when
--timeout passes: every process of it is killed.

A seccomp filter, installed last before COMMAND is executed, refuses
with EPERM: add_key, keyctl and request_key (the kernel keyrings),
ioctl TIOCSTI and TIOCLINUX (the request compared on its low 32 bits),
perf_event_open, kexec_load, kexec_file_load, bpf, userfaultfd,
init_module, finit_module, delete_module, acct, quotactl, quotactl_fd,
syslog, personality other than 0, 8, 0x20000, 0x20008 and 0xffffffff
(so no setarch -R), and unshare and clone with CLONE_NEWUSER. clone3 and
io_uring_setup, io_uring_enter and io_uring_register fail with ENOSYS,
as on a kernel without them: libc then uses clone, whose flags the filter
can read, and event loops fall back to epoll. x32 calls fail with EPERM;
a call of a foreign ABI (i386 int 0x80 on x86_64, arm32 on aarch64) kills
the process with SIGSYS. Every other call is allowed. --allow-userns
leaves out the user namespace rules (unshare, clone, clone3).
--seccomp-fd N reads a program from descriptor N (an array of struct
sock_filter, as bwrap --seccomp takes; at most 4096 instructions) before
the stage starts and installs it instead of the default one; N is not
passed to COMMAND.

--out DIR=NAME: DIR starts empty and writable; after COMMAND exits 0 its
content is stored as slice NAME with mount point DIR, as slice-add would
(crash-safe, deduplicated). On any other status nothing is stored.
--timeout covers the storing too: if it passes meanwhile, nothing is
stored and the status is 124.
--cache: the working directory and each --ro-bind source are stored
first, and COMMAND sees those stored copies (read-only, 0644 or 0755 by
the executable bit alone, every mtime 1970-01-01T00:00:01Z), not the live
paths, and the host name localhost
unless --hostname. The stage's digest covers its slices, those copies,
the command, the environment (which under --cache holds only PATH,
--keep-env and --env variables: a cd or an unrelated variable is no
input), the ids and every option that can change the output. When an earlier run with
that digest stored an output that is still in the store, COMMAND does not
run: NAME points at that output and one line on stderr says so. Inputs
must be declared: --cache needs --net none, and refuses --bind, --rw-cwd
and --fd; stdin is /dev/null. The host's base dirs are not hashed.

--on HOST runs the stage on HOST, as if it were local: stdin, stdout and
stderr stream both ways (stdout and stderr kept apart), the exit status or
the signal comes back, and ^C or a signal sent to sandbox reaches the
remote stage. HOST is reached by running SLICEBOX_RSH (default: ssh,
sharing one connection per host for 60 s) with HOST in place of a word
%h, or after its words, then 'slicebox serve --stdio' (or
SLICEBOX_REMOTE_COMMAND's words, then serve --stdio). Each --slice is
resolved here and sent by content: only the files HOST's store lacks
travel, compressed. The working directory is sent as a read-only
snapshot shown at its own path (not with --no-cwd), as is each --ship
DIR; the stage starts there unless --chdir. The stage gets the remote
server's environment, not the caller's, with --env and --unsetenv
applied. Like ssh, it reads stdin ahead (1 MiB beyond what the stage
consumed) whether or not the stage reads it: give it </dev/null in a
while-read loop. --out DIR=NAME stores NAME on HOST and then here. --on refuses
what names this machine's paths or descriptors, or needs its terminal:
--bind, --ro-bind, --fd, --seccomp-fd, --layer, --image, --upper, --dev,
--rw-cwd and --cache, and needs a COMMAND. If HOST cannot be reached or
the connection breaks, the status is 255, as ssh's, and the message
gives what the transport said.

With SLICEBOX_TIMES=1 in the environment, one line on stderr after the
stage gives the µs each step of its start took.

Exit status: COMMAND's own; 128+N if it was killed by signal N (159:
SIGSYS, a call of a foreign ABI); 124 if --timeout passed; 125 if the
sandbox could not be set up; 126 if COMMAND could not be executed; 127 if
it was not found; 1 if --out could not be stored; 2 for a usage error;
255 if --on HOST could not be reached or the connection broke.",
};

pub const SLICE_ADD: CommandSpec = CommandSpec {
    name: "slice-add",
    usage: "slice-add [OPTIONS] NAME SOURCE",
    summary: "Store SOURCE as a slice and point NAME at it.",
    options: &[
        OptionSpec {
            long: "at",
            value: Some("MOUNTPOINT"),
            help: "where stages mount the slice (default: an exported archive's own, else the one prefix SOURCE was built for, else /opt/NAME)",
        },
        OptionSpec {
            long: "env",
            value: Some("NAME=VALUE"),
            help: "set this variable in every stage that mounts the slice (${NAME} is NAME's value; default: an exported archive's own); repeatable",
        },
        OptionSpec {
            long: "limit",
            value: Some("KEY=VALUE"),
            help: "raise or lower one limit of what SOURCE may hold (below); repeatable",
        },
        HELP,
    ],
    options_end_at_operand: false,
    details: "\
SOURCE is a directory, a .tar, .tar.gz or .tar.zst file, or - for a tar
stream (plain, gzip or zstd) on stdin. Re-adding a name keeps its previous
target reachable as NAME@1 (then NAME@2, ...) until slice-gc. Prints the
new slice's digest.

A tree built for a prefix works only mounted there. slice-add reads the
first line (#!) of each executable file and the ELF interpreter, RPATH
and RUNPATH of each executable and shared library it stores. When one of
these is a file of the tree under some other directory, the tree was
built for that directory (/, /usr, /usr/local, /bin, /sbin, /lib*, /etc
hold the host's own files and are left out). One line on stderr per
prefix says so: 'built for PREFIX; add it with --at PREFIX, or rebuild
it for MOUNTPOINT'. Without --at, a single such prefix is the mount point.

An archive from slice-export carries its slice's mount point and
environment (pax records SLICEBOX.at and SLICEBOX.env in a global header
before the first entry): slice-add takes them where --at, or any --env,
is not given, so 'slice-export X | slice-add Y -' stores the slice X is.
They are checked as --at and --env are; a bad one refuses the archive.

--env NAME=VALUE: in VALUE, ${NAME} is NAME's value in the stage so far
(an unset NAME that is a whole ':'-separated element drops with its ':',
so 'PYTHONPATH=/opt/p:${PYTHONPATH}' never leaves an empty element, which
would mean the current directory). Every other $ form (${X:-...},
${X:+...}, $X, $(...)) is refused with a usage error naming it. A slice
with a top-level bin/ directory needs no PATH entry: sandbox puts it on
PATH.

Refused, and nothing is added: entries that would escape the slice (..,
absolute paths, anything below a symlink or a file), hardlinks to
anything but an earlier file of the archive, device nodes, fifos,
sockets, sparse files, duplicate entries, names or link targets with a
NUL byte, and archives that tools could read two ways (a pax size that
disagrees with its header). Setuid, setgid and sticky bits are dropped:
only the executable bit is kept. A directory that changes while it is
added is refused, naming the entry.

Limits, each checked before the bytes it guards are read (KEY=VALUE for
--limit, or comma-separated in SLICEBOX_LIMITS; sizes take K, M, G, T):
  bytes    all files, each hardlink counted again (default 64G)
  file     one file (default 64G)
  entries  files, directories, symlinks, hardlinks (default 4M)
  depth    directories a path goes down (default 512)
  name     bytes of one path component (default 255)
  path     bytes of one whole path (default 4095)
  ratio    times its size a gzip or zstd stream expands to (default 1000)
name and path can be lowered, not raised: the defaults are the most
Linux takes. A symlink's target counts as a path. ratio applies past the
first 64M a stream expands to.

Re-adding a source repairs what it covers: stored objects it relies on
are re-hashed, damaged ones are replaced, and a damaged stored copy of
the same slice is swapped for a good one (a running stage keeps the
copy it mounted).",
};

pub const SLICE_LIST: CommandSpec = CommandSpec {
    name: "slice-list",
    usage: "slice-list [--json]",
    summary: "List named slices: name, digest, mount point, files, bytes.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "A slice whose manifest is damaged is named on stderr; the others are
still listed, and the status is 1.",
};

pub const SLICE_SHOW: CommandSpec = CommandSpec {
    name: "slice-show",
    usage: "slice-show [--json] REF",
    summary:
        "Show one slice: names, digests, mount point, size, and bytes shared with other slices.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "\
REF, everywhere a slice is named: a name, NAME@N (the Nth previous target
of NAME), a full sha256: digest, or a unique prefix of at least 4 hex
digits. Commands that change the store (slice-rm, slice-tag) take no
prefixes.",
};

pub const SLICE_RM: CommandSpec = CommandSpec {
    name: "slice-rm",
    usage: "slice-rm REF",
    summary: "Remove a name (and its history), or every name of a digest; slice-gc frees the data.",
    options: &[HELP],
    options_end_at_operand: false,
    details: "REF is a name or a full sha256: digest, never a prefix: a typo must not\nremove another slice.",
};

pub const SLICE_TAG: CommandSpec = CommandSpec {
    name: "slice-tag",
    usage: "slice-tag REF NAME",
    summary: "Point NAME at the slice REF resolves to (NAME's previous target becomes NAME@1).",
    options: &[HELP],
    options_end_at_operand: false,
    details: "REF is a name, NAME@N or a full sha256: digest, never a prefix.",
};

pub const SLICE_GC: CommandSpec = CommandSpec {
    name: "slice-gc",
    usage: "slice-gc [--json]",
    summary:
        "Delete what no name and no running stage uses: ref history, slices, objects, leftovers.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "\
Marks from the current target of every name and from the slices pinned by
running stages, then sweeps: unused slices, unused objects, and what killed
commands left in the store's tmp/ (but the --out dirs of stages still
running). History entries (NAME@1, ...) are kept only until gc. Waits for
running slice-adds; stages may keep running.",
};

pub const SLICE_VERIFY: CommandSpec = CommandSpec {
    name: "slice-verify",
    usage: "slice-verify [--json] [REF]",
    summary: "Re-hash a slice (or every slice and object) and name every damaged path.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "\
Exit status 0 when nothing is damaged, 1 when something is. Runs under the
store's shared lock, so a gc does not run meanwhile. Re-adding a slice's
source repairs what slice-verify finds in it.",
};

pub const SLICE_DIFF: CommandSpec = CommandSpec {
    name: "slice-diff",
    usage: "slice-diff [--json] A B",
    summary: "List entries added (+), removed (-) and changed (M) from slice A to slice B.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "",
};

pub const STORE_STATS: CommandSpec = CommandSpec {
    name: "store-stats",
    usage: "store-stats [--json]",
    summary: "Report the store's size on disk, its deduplicated size and what slice-gc would free.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "\
\"gc would free\" is the file contents slice-gc would remove now: slices
that no name (history entries such as NAME@1 included, as gc prunes them)
and no running stage uses, objects that no kept slice lists, and what
killed commands left in the store's tmp/ (a staging dir, the --out dir of
a stage that was killed). Each file is counted once, and only when every
link to it goes.",
};

const REMOTE_STORE: OptionSpec = OptionSpec {
    long: "remote-store",
    value: Some("PATH"),
    help: "use the store PATH on HOST (default: the remote user's store)",
};

pub const SLICE_PUSH: CommandSpec = CommandSpec {
    name: "slice-push",
    usage: "slice-push [--remote-store PATH] HOST REF...",
    summary: "Send slices to HOST's store, under the same names: only what HOST lacks travels.",
    options: &[REMOTE_STORE, HELP],
    options_end_at_operand: false,
    details: "\
HOST is reached as sandbox --on reaches it (ssh, or SLICEBOX_RSH). Each REF
is resolved here; a name becomes the same name there (its previous target
becomes NAME@1 there), a digest is sent unnamed. One round trip finds the
slices HOST lacks, a second the files it lacks, and only those files'
content is sent, as one zstd stream. HOST checks every listing and hashes
every file before it is stored, and stores them as slice-add does: a
connection cut at any point leaves HOST's store as it was, but for
garbage slice-gc removes. Prints one line: how many slices were sent and
how many bytes of content HOST stored.",
};

pub const SLICE_PULL: CommandSpec = CommandSpec {
    name: "slice-pull",
    usage: "slice-pull [--remote-store PATH] HOST REF...",
    summary: "Fetch slices from HOST's store into this one, under the same names.",
    options: &[REMOTE_STORE, HELP],
    options_end_at_operand: false,
    details: "\
The mirror of slice-push: each REF is resolved on HOST, only the files
this store lacks travel, and each is checked before it is stored here.",
};

pub const SERVE: CommandSpec = CommandSpec {
    name: "serve",
    usage: "slicebox serve --stdio",
    summary: "Serve one remote session on stdin and stdout (what sandbox --on runs on HOST).",
    options: &[
        OptionSpec {
            long: "stdio",
            value: None,
            help: "speak the protocol on stdin and stdout (the only way there is)",
        },
        HELP,
    ],
    options_end_at_operand: false,
    details: "\
sandbox --on, slice-push and slice-pull start it through ssh (or
SLICEBOX_RSH); nobody needs to run it by hand. It stores the slices the
client sends in the store the client names (--remote-store), else in
SLICEBOX_STORE or the default store, and runs the client's stage as the
same sandbox command line would run here. Its own failures go to the
client, which shows them.",
};

pub const DOCTOR: CommandSpec = CommandSpec {
    name: "doctor",
    usage: "slicebox doctor",
    summary: "Check what this machine lets stages do, and name the fix for what it does not.",
    options: &[HELP],
    options_end_at_operand: false,
    details: "\
One line per check, each starting with ok, FAIL (stages cannot run until it
is fixed) or note (an optional feature is missing), then what was found and
the fix. Each kernel check is tried for real by a child process: user
namespaces (made, with the ids mapped), the new mount API (fsopen, fsconfig,
fsmount, open_tree, mount_setattr in a user namespace), OverlayFS in a user
namespace (two lower dirs given with fsconfig lowerdir+), the Landlock ABI,
a seccomp filter, the layer format (a 0/0 character device as a whiteout
and a user.overlay.opaque dir, made by you and hidden by an overlay mounted
with userxattr in a user namespace), /dev/fuse, fuse-overlayfs and
fusermount3 in PATH, the subordinate ids in /etc/subuid and /etc/subgid,
and the store: its owner, and that every named slice's
manifest reads and its tree is there (slice-verify re-hashes every file).

Exit status: 0 when no line says FAIL, 1 otherwise.",
};

pub const SLICE_EXPORT: CommandSpec = CommandSpec {
    name: "slice-export",
    usage: "slice-export REF",
    summary: "Write a slice to stdout as a tar that slice-add takes back to the same slice.",
    options: &[HELP],
    options_end_at_operand: false,
    details: "\
The tar is deterministic: entries depth-first in name order, every mtime,
uid and gid 0, no owner names, mode 0755 for directories and executables,
0644 for other files, 0777 for symlinks, files linked in the store written
as files, pax headers for paths, link targets and sizes ustar cannot hold.
The same slice always exports to the same bytes.

The slice's mount point and its environment entries come first, as pax
records SLICEBOX.at and SLICEBOX.env of a global header named
pax_global_header (as git archive names its own), which tar(1) and other
readers skip. `slice-export REF | slice-add NAME -` therefore stores the
same slice, with the same slice digest; --at or --env given to slice-add
take the place of the archive's. A terminal is refused as stdout.",
};

pub const SLICE_ENV: CommandSpec = CommandSpec {
    name: "slice-env",
    usage: "slice-env [OPTIONS] NAME",
    summary: "Show a slice's environment, or change it as a new version of NAME.",
    options: &[
        OptionSpec {
            long: "env",
            value: Some("NAME=VALUE"),
            help:
                "set this variable (in place of an entry for the same NAME, else last); repeatable",
        },
        OptionSpec {
            long: "unset",
            value: Some("NAME"),
            help: "remove every entry for NAME; repeatable",
        },
        HELP,
    ],
    options_end_at_operand: false,
    details: "\
Without options, prints the slice's environment entries (slice-add --env),
one per line, in the order stages apply them. With --env or --unset
(applied in command-line order), stores a new slice with the same tree and
mount point and the changed environment, points NAME at it and prints its
digest; NAME's previous target stays reachable as NAME@1 until slice-gc.
The tree's files are not copied: the new slice shares them. NAME must be a
name (not a digest or NAME@N) when it is changed.",
};

pub const PS: CommandSpec = CommandSpec {
    name: "ps",
    usage: "slicebox ps [--json]",
    summary: "List the running stages: pid, holder, age, slices and command.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "\
Read from the pins that running stages hold in the store: every stage,
with --slice or without (SLICES then shows -), pins while it runs. PID is
the stage's pid 1 on the host (- when it is not yours to see); HOLDER is
the process that waits for the stage (sandbox, or the shell running the
builtin): the stage dies with it, and a stage whose holder is gone, even
by SIGKILL, is not listed. A stage without --slice or --out that cannot
open the store (it cannot be made, or is another user's) runs unlisted.
The command is shown as a shell would quote it, with control characters
escaped; --json gives the real strings.",
};

pub const LAYER_ADD: CommandSpec = CommandSpec {
    name: "layer-add",
    usage: "layer-add [OPTIONS] NAME SOURCE | layer-add --from-upper DIR NAME",
    summary: "Store an image's layers, a layer tarball or an OverlayFS upper dir as layer NAME.",
    options: &[
        OptionSpec {
            long: "from-upper",
            value: Some("DIR"),
            help: "read the layer from an OverlayFS upper dir (whiteouts and opaque dirs included)",
        },
        OptionSpec {
            long: "platform",
            value: Some("OS/ARCH[/VARIANT]"),
            help: "the image to take where SOURCE's index has several (default: the host's)",
        },
        OptionSpec {
            long: "limit",
            value: Some("KEY=VALUE"),
            help: "raise or lower one limit of what SOURCE may hold, as slice-add's; repeatable",
        },
        HELP,
    ],
    options_end_at_operand: false,
    details: "\
SOURCE is an image: an OCI image layout directory, an oci-archive, or a
docker save / podman save archive (all of its layers, bottom first, and
its config's Env, WorkingDir, User, Entrypoint and Cmd, which layer-show
prints; each blob is held to the digest its manifest names). Or SOURCE is
one layer tarball (.tar, .tar.gz or .tar.zst, told by its first bytes),
or - for stdin. Files go into the store's objects, shared with
slices; the layer keeps every entry's mode, owner and extended attributes.
OCI whiteouts (.wh.NAME) and opaque markers (.wh..wh..opq) are recorded as
whiteouts and opaque directories. Refused, and nothing is added: what
slice-add refuses (absolute names, '..', links out of the layer, entries
below a symlink, limits), whiteouts that name '..' or the layer root,
OverlayFS attributes, and device nodes outside /dev. Device nodes under
/dev are skipped and counted: every stage has its own /dev. A tarball or
blob read before is not read again. Prints the digest of the stack NAME points at;
NAME's previous target stays reachable as NAME@1 until slice-gc.",
};

pub const LAYER_LIST: CommandSpec = CommandSpec {
    name: "layer-list",
    usage: "layer-list [--json]",
    summary: "List layer names, the stack each points at, and its number of layers.",
    options: &[JSON, HELP],
    options_end_at_operand: false,
    details: "",
};

pub const LAYER_SHOW: CommandSpec = CommandSpec {
    name: "layer-show",
    usage: "layer-show [--json] [--files] REF",
    summary: "Show a layer stack: each layer's digest, entries, size, whiteouts and opaque dirs.",
    options: &[
        OptionSpec {
            long: "files",
            value: None,
            help: "list every entry: mode, uid/gid, size, path and link target, as tar -tv --numeric-owner",
        },
        JSON,
        HELP,
    ],
    options_end_at_operand: false,
    details: "REF is a layer name, NAME@N, or a stack's full sha256: digest.",
};

pub const LAYER_RM: CommandSpec = CommandSpec {
    name: "layer-rm",
    usage: "layer-rm NAME",
    summary: "Remove a layer name and its history; slice-gc frees what only it used.",
    options: &[HELP],
    options_end_at_operand: false,
    details: "",
};

pub const LAYER_MOUNT: CommandSpec = CommandSpec {
    name: "layer-mount",
    usage: "layer-mount [--upper DIR] REF... DIR | layer-mount [--json]",
    summary: "Mount the composed view of layers REF... at DIR, for the commands that follow.",
    options: &[
        OptionSpec {
            long: "upper",
            value: Some("DIR"),
            help: "make the view writable, its changes kept in DIR (OverlayFS's upper dir; DIR.work beside it is its work dir)",
        },
        JSON,
        HELP,
    ],
    options_end_at_operand: false,
    details: "\
Each REF is a layer name, NAME@N or a stack's digest; the layers stack
bottom first, as several sandbox --layer do. The view is read-only, or,
with --upper, writable: what is written, and whiteouts and opaque dirs for
what is removed, goes to the upper dir, which layer-add --from-upper DIR
NAME turns into a layer. As root it is the kernel's OverlayFS; a user
without mount power over their own mount namespace gets fuse-overlayfs
(through fusermount3, as podman does), and where neither is there an
error says what to install. Setuid bits and device nodes of a layer are
not honoured. The view lasts until layer-umount DIR (or a reboot); until
then slice-gc keeps its layers, even when their names are removed.
Without operands, lists the views mounted now: DIR, the refs, how it is
mounted, and ro or rw with its upper dir.",
};

pub const LAYER_UMOUNT: CommandSpec = CommandSpec {
    name: "layer-umount",
    usage: "layer-umount DIR",
    summary: "Unmount the view layer-mount put at DIR.",
    options: &[HELP],
    options_end_at_operand: false,
    details: "\
Refuses a DIR that is no layer-mount, or with another mount on top of it,
and a view in use (busy) stays mounted, as umount leaves it.",
};

pub const EXPORT_OCI: CommandSpec = CommandSpec {
    name: "export-oci",
    usage: "slicebox export-oci [OPTIONS] DIR [-- COMMAND [ARG...]]",
    summary: "Write what a stage is made of (layers, slices, environment) as an OCI image layout DIR.",
    options: &[
        OptionSpec {
            long: "slice",
            value: Some("REF[:MOUNTPOINT]"),
            help: "a layer of its own: the slice's tree at its mount point (or MOUNTPOINT); repeatable",
        },
        OptionSpec {
            long: "layer",
            value: Some("NAME"),
            help: "the stored layers NAME points at, one image layer each, as stored; repeatable, bottom first",
        },
        OptionSpec {
            long: "image",
            value: Some("NAME"),
            help: "as --layer NAME (below any --layer), and keep its Entrypoint, Cmd, Env, WorkingDir and User",
        },
        OptionSpec {
            long: "env",
            value: Some("NAME=VALUE"),
            help: "set a variable of the image's Env; repeatable",
        },
        OptionSpec {
            long: "unsetenv",
            value: Some("NAME"),
            help: "remove a variable from the image's Env; repeatable",
        },
        OptionSpec {
            long: "clearenv",
            value: None,
            help: "accepted as sandbox takes it; the Env never holds the caller's variables",
        },
        OptionSpec {
            long: "keep-env",
            value: Some("NAME"),
            help: "put the caller's NAME in the image's Env; repeatable",
        },
        OptionSpec {
            long: "chdir",
            value: Some("DIR"),
            help: "the image's WorkingDir (default: an --image's)",
        },
        OptionSpec {
            long: "tag",
            value: Some("NAME"),
            help: "the name index.json gives the image (org.opencontainers.image.ref.name; default latest)",
        },
        HELP,
    ],
    options_end_at_operand: true,
    details: "\
The options are sandbox's that say what a stage is made of; DIR (which
must not exist, or be an empty directory) becomes an OCI image layout
(oci-layout, index.json, blobs/sha256/) of one image for the host's
platform, as umoci, skopeo (oci:DIR:TAG), podman and layer-add read it.
Options that set up a running stage (--bind, --ro-bind, --tmpfs, --out,
--cache, --net, --uid, --gid, --upper, --timeout, ...) are refused.

Layers, bottom first: each stored layer of the --image, then of each
--layer, one image layer each, written back from the store's listing:
modes (setuid and setgid included), owners and extended attributes as
layer-add recorded them, whiteouts as .wh.NAME and opaque directories
with .wh..wh..opq. Then one layer per slice, parents' mount points before
their children's: the mount point's parent directories (0755, 0:0), the
mount point marked opaque (.wh..wh..opq: what lower layers hold there is
hidden, as the slice's mount hides it in a stage), and the slice's tree
as slice-export writes it (0755 directories and executables, 0644 files,
0:0). A slice's layer depends on its tree and mount point alone, so
images that share a slice share that layer's blob.

Without --layer and --image the image holds only the slices: the host's
/usr, /bin, /lib* and /etc that a stage would see are not exported (a
note on stderr says so). Such an image runs where the slices need
nothing of a base, or as layers over another image.

The config: Env is what a stage with --clearenv would get (an --image's
Env, PATH with each slice's bin/ first, each slice's variables, then
--keep-env, --env, --unsetenv), without SLICEBOX_STAGE and
SLICEBOX_SLICES; Entrypoint and User are an --image's; Cmd is COMMAND,
or an --image's Cmd when no COMMAND is given; WorkingDir is --chdir, or
an --image's. architecture and os are the host's.

The export is deterministic: the same stage exported twice gives the
same bytes, blob by blob, so the same digests. Layers are uncompressed
tars (application/vnd.oci.image.layer.v1.tar: a compressor's output can
change with its version, and a layer's blob digest is then its diff ID),
every mtime is 0, entries are in name order (a layer's hardlinks last,
after their targets), and the JSON has sorted keys, no whitespace and no
created time. Files are streamed into their blobs and hashed as they go;
each file's bytes are checked against its digest in the store.

The layout is written in a staging directory beside DIR (.NAME.export-oci-*)
and renamed to DIR when complete: after a crash DIR is absent (or still
empty) and only the staging directory is left, to remove by hand.

Exit status: 0 when DIR is written, 1 when it cannot be, 2 for a usage
error.",
};

pub const COMMANDS: &[&CommandSpec] = &[
    &SANDBOX,
    &SLICE_ADD,
    &SLICE_LIST,
    &SLICE_SHOW,
    &SLICE_RM,
    &SLICE_TAG,
    &SLICE_GC,
    &SLICE_VERIFY,
    &SLICE_DIFF,
    &STORE_STATS,
    &SLICE_EXPORT,
    &SLICE_ENV,
    &LAYER_ADD,
    &LAYER_LIST,
    &LAYER_SHOW,
    &LAYER_RM,
    &LAYER_MOUNT,
    &LAYER_UMOUNT,
    &SLICE_PUSH,
    &SLICE_PULL,
];

/// Commands of the `slicebox` executable only (`slicebox doctor`): no
/// builtin and no link, since `ps` as either would hide ps(1),
/// `export-oci` writes files, never a pipeline's stage, and `serve` is
/// what a remote session runs.
pub const TOOLS: &[&CommandSpec] = &[&DOCTOR, &PS, &EXPORT_OCI, &SERVE];

/// Why `command` refuses `option` (`--bind`), a `sandbox` option it does
/// not take: `export-oci` writes what a stage is made of, and these set
/// up a running stage. `None` for any other unknown option.
pub fn refusal(command: &CommandSpec, option: &[u8]) -> Option<String> {
    let long = option.strip_prefix(b"--")?;
    let long = long.split(|b| *b == b'=').next()?;
    let known = |spec: &CommandSpec| spec.options.iter().any(|o| o.long.as_bytes() == long);
    if command.name != EXPORT_OCI.name || known(command) || !known(&SANDBOX) {
        return None;
    }
    let taken: Vec<String> = command
        .options
        .iter()
        .filter(|o| o.long != "help" && SANDBOX.options.iter().any(|s| s.long == o.long))
        .map(|o| format!("--{}", o.long))
        .collect();
    Some(format!(
        "--{} sets up a running stage, which an image does not hold; of sandbox's options export-oci takes {}",
        String::from_utf8_lossy(long),
        taken.join(", ")
    ))
}

pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .chain(TOOLS)
        .copied()
        .find(|c| c.name == name)
}

impl CommandSpec {
    /// The full `--help` text.
    pub fn help(&self) -> String {
        let mut out = format!("Usage: {}\n{}\n", self.usage, self.summary);
        if !self.options.is_empty() {
            out.push_str("\nOptions:\n");
            let left = |o: &OptionSpec| match o.value {
                Some(v) => format!("--{} {}", o.long, v),
                None => format!("--{}", o.long),
            };
            let width = self
                .options
                .iter()
                .map(|o| left(o).len())
                .max()
                .unwrap_or(0);
            for option in self.options {
                out.push_str(&format!("  {:width$}  {}\n", left(option), option.help));
            }
        }
        if !self.details.is_empty() {
            out.push('\n');
            out.push_str(self.details);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    /// `slice-add --help` (and docs/builtins.md) give the defaults.
    #[test]
    fn the_help_text_states_the_defaults() {
        let shown = |v: u64| match v {
            v if v % (1 << 30) == 0 => format!("{}G", v >> 30),
            v if v % (1 << 20) == 0 => format!("{}M", v >> 20),
            v => v.to_string(),
        };
        let d = crate::store::Limits::default();
        let details = super::SLICE_ADD.details;
        for (key, value) in crate::store::LIMIT_KEYS
            .iter()
            .zip([d.bytes, d.file, d.entries, d.depth, d.name, d.path, d.ratio])
        {
            let line = details
                .lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap_or_else(|| panic!("{key} is not in slice-add --help"));
            assert!(
                line.ends_with(&format!("(default {})", shown(value))),
                "{line}"
            );
        }
    }
}

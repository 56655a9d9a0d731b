#!/bin/sh
# A "host" for the remote spec cases, given as SLICEBOX_RSH: this machine,
# with a store of the host's own ($REMOTE_STORES/HOST), reached through
# the transport's pipes as ssh would reach it. The real sshd and network
# namespace hosts are in shell-tests/t-remote-ssh.sh.
host=$1
shift
SLICEBOX_STORE="${REMOTE_STORES:?}/$host" exec "$@"

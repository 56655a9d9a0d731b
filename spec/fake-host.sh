#!/bin/sh
# A "host" for the remote spec cases, given as SLICEBOX_RSH: this machine,
# with a store of the host's own ($REMOTE_STORES/HOST), reached through
# the transport's pipes as ssh would reach it. With SPEC_REMOTE_NETNS=P
# the host is the network namespace P-HOST, entered with `ip netns exec`
# (shell-tests/t-remote-ssh.sh runs the cases so, as root). The real sshd
# hosts are in shell-tests/t-remote-ssh.sh.
host=$1
shift
if [ -n "${SPEC_REMOTE_NETNS:-}" ]; then
    exec ip netns exec "$SPEC_REMOTE_NETNS-$host" env SLICEBOX_STORE="${REMOTE_STORES:?}/$host" "$@"
fi
SLICEBOX_STORE="${REMOTE_STORES:?}/$host" exec "$@"

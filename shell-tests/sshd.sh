# A real OpenSSH server for the remote tests and bench/remote.sh, sourced:
#
#   . shell-tests/sshd.sh
#   sshd_init DIR                         keys and an empty ssh_config in DIR
#   sshd_start NAME ADDRESS PORT [NETNS]  an sshd whose sessions use the
#                                         store DIR/store-NAME; `ssh -F
#                                         DIR/ssh_config NAME` logs in
#   sshd_stop                             ends every sshd started here
#   free_port                             a free TCP port on 127.0.0.1
#
# It logs into the current user's own account, so it runs as root and as
# any user, with a host key and a user key made here.

sshd_pids=()
sshd_names=()

sshd_init() {
    sshd_dir=$1
    ssh-keygen -q -t ed25519 -N '' -f "$sshd_dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$sshd_dir/user_key"
    cp "$sshd_dir/user_key.pub" "$sshd_dir/authorized_keys"
    : > "$sshd_dir/ssh_config"
    # sshd run by root wants its privilege separation dir (Debian's service
    # makes it at boot).
    [ "$(id -u)" != 0 ] || mkdir -p /run/sshd
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

sshd_start() {
    local name=$1 address=$2 port=$3 netns=${4:-} i
    cat > "$sshd_dir/sshd-$name.conf" <<CONF
ListenAddress $address:$port
HostKey $sshd_dir/host_key
AuthorizedKeysFile $sshd_dir/authorized_keys
PidFile $sshd_dir/sshd-$name.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
SetEnv SLICEBOX_STORE=$sshd_dir/store-$name
CONF
    if [ -n "$netns" ]; then
        ip netns exec "$netns" /usr/sbin/sshd -f "$sshd_dir/sshd-$name.conf" -D -e 2>"$sshd_dir/sshd-$name.log" &
    else
        /usr/sbin/sshd -f "$sshd_dir/sshd-$name.conf" -D -e 2>"$sshd_dir/sshd-$name.log" &
    fi
    sshd_pids+=($!)
    sshd_names+=("$name")
    cat >> "$sshd_dir/ssh_config" <<CONF
Host $name
  HostName $address
  Port $port
  User $(id -un)
  IdentityFile $sshd_dir/user_key
  IdentitiesOnly yes
  UserKnownHostsFile $sshd_dir/known_hosts
  StrictHostKeyChecking accept-new
  BatchMode yes
CONF
    for i in $(seq 200); do
        ssh -F "$sshd_dir/ssh_config" -o ControlPath=none "$name" true 2>/dev/null && return 0
        sleep 0.05
    done
    cat "$sshd_dir/sshd-$name.log" >&2
    echo "sshd.sh: sshd '$name' on $address:$port did not take a login" >&2
    return 1
}

sshd_stop() {
    local pid name control
    # The connections slicebox shares (ControlPersist) would outlive the
    # servers by a minute, and their sessions with them.
    control=${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/slicebox-ssh}
    control=${control:-/tmp/slicebox-ssh-$(id -u)}
    for name in "${sshd_names[@]}"; do
        ssh -F "$sshd_dir/ssh_config" -o ControlPath="$control/%C" -O exit "$name" 2>/dev/null || true
    done
    sshd_names=()
    for pid in "${sshd_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${sshd_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    sshd_pids=()
}

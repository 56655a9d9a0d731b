# export-oci's image run by a real OCI runtime: umoci unpack makes the
# bundle, crun runs it, and the payload prints what the stage would:
# the slice's files, the image's Env, WorkingDir and User. As root only:
# rootless crun needs ids to map and, on this kind of VM (cgroup v1 with
# an empty cgroup2 at /sys/fs/cgroup/unified), refuses the hybrid layout.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d "$SLICEBOX_TEST_WORK/export-oci.XXXXXX")
cd "$work"
if [ "$(id -u)" != 0 ]; then
    printf 'NOTE: t-export-oci.sh runs crun as root only; uid %s here: nothing checked\n' "$(id -u)"
    done_checks
    exit 0
fi
mkdir -p x/bin x/lib && printf '#!/bin/sh\necho hi from x\n' > x/bin/hello
chmod +x x/bin/hello && echo data > x/lib/d.txt
slice-add x x --at /opt/x >/dev/null
python3 "$(dirname "$0")/../spec/layer-tars.py" image img
layer-add app img >/dev/null
slicebox export-oci --image app --slice x out -- \
    'cat /opt/x/lib/d.txt; /opt/x/bin/hello; echo "$GREETING in $PWD as $(id -u)"' >/dev/null
umoci unpack --image out:latest bundle >/dev/null 2>&1 || fail "umoci unpack of the export failed"
expect_eq "umoci's bundle runs the export's Entrypoint and Cmd" \
    '["/bin/sh","-c","cat /opt/x/lib/d.txt; /opt/x/bin/hello; echo \"$GREETING in $PWD as $(id -u)\""]' \
    "$(python3 -c 'import json; print(json.dumps(json.load(open("bundle/config.json"))["process"]["args"], separators=(",", ":")))')"
# umoci's bundle asks for a terminal; this run has none.
python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); c["process"]["terminal"] = False
json.dump(c, open(sys.argv[1], "w"))' bundle/config.json
state=$work/crun-state
run_crun() { (cd bundle && crun --root "$state" --cgroup-manager=disabled run "export-oci-$$-$1" </dev/null); }
if out=$(run_crun plain 2>&1); then
    :
elif [[ $out == *"cgroups in hybrid mode not supported"* ]]; then
    # crun 1.8 refuses a cgroup2 mount beside v1 even with no cgroup
    # manager; without it (in a private mount namespace) it runs.
    printf 'NOTE: crun: %s; retried with /sys/fs/cgroup/unified unmounted in a private mount namespace\n' "$out"
    out=$(cd bundle && unshare -m --propagation private sh -c \
        'umount /sys/fs/cgroup/unified && exec crun --root "$1" --cgroup-manager=disabled run "$2"' \
        sh "$state" "export-oci-$$-private" </dev/null 2>&1) || fail "crun in a private mount namespace: $out"
else
    fail "crun run: $out"
fi
expect_eq "crun runs the exported image: the slice, the image's Env, WorkingDir and User" \
    "$(printf 'data\nhi from x\nfrom the image in /srv/app as 0')" "$out"
done_checks

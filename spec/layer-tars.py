#!/usr/bin/env python3
"""Helpers for spec/layers.test.sh.

    layer-tars.py hostile KIND OUT   write a hostile layer tar of KIND to OUT
    layer-tars.py whiteouts OUT      a good layer with whiteouts and an opaque dir
    layer-tars.py lower OUT          what whiteouts' layer hides or keeps, below it
    layer-tars.py tools OUT          a small base: the host's busybox, its
                                     libraries, and /bin/sh, /bin/cat ... as
                                     links to it (merged /usr), and /etc/motd
    layer-tars.py link NAME TARGET OUT  a layer whose NAME is a symlink to TARGET
    layer-tars.py image DIR          an OCI image layout: the tools layer and
                                     /srv/app, with a config that sets Env,
                                     WorkingDir, User, Entrypoint and Cmd
    layer-tars.py tv TAR             `tar -tv --numeric-owner` of TAR as
                                     `layer-show --files` prints a layer:
                                     root and /dev device nodes left out,
                                     hardlinks with their file's size, in
                                     the layer's order (by path components)
"""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile


def member(name, kind=tarfile.REGTYPE, data=b"", **fields):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.mode = fields.pop("mode", 0o644)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, (io.BytesIO(data) if data else None)


HOSTILE = {
    "whiteout-dotdot": [member("a/", tarfile.DIRTYPE), member("a/.wh..."), ],
    "whiteout-outside": [member("../.wh.x")],
    "whiteout-root": [member(".wh..wh..opq")],
    "whiteout-self": [member("a/.wh.")],
    "device-outside-dev": [member("etc/null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
    "absolute": [member("/etc/passwd", data=b"x")],
    "hardlink-escape": [member("a", tarfile.LNKTYPE, linkname="../../etc/passwd")],
    "below-symlink": [member("a", tarfile.SYMTYPE, linkname="/etc"), member("a/passwd", data=b"x")],
    "overlay-xattr": [member("d/", tarfile.DIRTYPE,
                             pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})],
    "twice": [member("f", data=b"1"), member("f", data=b"2")],
}


def write(out, members):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, data)


def whiteouts(out):
    write(out, [
        member("d/", tarfile.DIRTYPE, mode=0o755),
        member("d/.wh.gone"),
        member("d/kept", data=b"kept\n", mode=0o4755, uid=1000, gid=100),
        member("e/", tarfile.DIRTYPE, mode=0o750),
        member("e/.wh..wh..opq"),
        member("e/new", data=b"new\n"),
        member("e/hard", tarfile.LNKTYPE, linkname="e/new"),
    ])


def lower(out):
    write(out, [
        member("d/", tarfile.DIRTYPE, mode=0o755),
        member("d/gone", data=b"gone\n"),
        member("d/kept", data=b"old\n"),
        member("e/", tarfile.DIRTYPE, mode=0o755),
        member("e/old", data=b"old\n"),
    ])


def tools(out):
    """busybox and what ldd says it loads, at their /usr paths."""
    busybox = os.path.realpath(shutil.which("busybox"))
    ldd = subprocess.run(["ldd", busybox], check=True, capture_output=True,
                         text=True).stdout
    libs = re.findall(r"(/\S+) \(0x", ldd)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, target in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")]:
            tar.addfile(member(name, tarfile.SYMTYPE, linkname=target)[0])
        for path in [busybox] + libs:
            name = path[1:] if path.startswith("/usr/") else "usr" + path
            with open(os.path.realpath(path), "rb") as f:
                tar.addfile(*member(name, data=f.read(), mode=0o755))
        tar.addfile(*member("etc/motd", data=b"hello\n", mode=0o644))
        for applet in ["sh", "cat", "ls", "echo", "id", "touch", "test", "mkdir", "sleep", "stat", "readlink", "wc", "chmod", "mv", "rm", "find", "sort", "sha256sum", "cut"]:
            tar.addfile(member("usr/bin/" + applet, tarfile.SYMTYPE, linkname="busybox")[0])


def image(out):
    """An OCI layout as skopeo writes one, by hand: blobs by sha256."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    layer_path = os.path.join(out, "layer.tar")
    tools(layer_path)
    with tarfile.open(layer_path, "a") as tar:
        tar.addfile(member("srv/app/", tarfile.DIRTYPE, mode=0o755)[0])
    layer = open(layer_path, "rb").read()
    os.remove(layer_path)
    config = blob(json.dumps({
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine],
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/bin", "GREETING=from the image"],
            "WorkingDir": "/srv/app",
            "User": "0:0",
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ['echo "$GREETING in $PWD as $(id -u)"'],
        },
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(blob(layer), mediaType="application/vnd.oci.image.layer.v1.tar")],
    }).encode())
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json")]}, f)


def tv(path):
    lines = subprocess.run(["tar", "-tvf", path, "--numeric-owner"], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    rows = {}
    sizes = {}
    for line in lines:
        perms, owner, size, _date, _time, rest = line.split(None, 5)
        link = ""
        if " -> " in rest:
            rest, target = rest.split(" -> ", 1)
            link = " -> " + target
        elif " link to " in rest:
            rest, target = rest.split(" link to ", 1)
            link = " link to " + target.removeprefix("./")
        name = rest.removeprefix("./").rstrip("/")
        if not name:
            continue
        if perms[0] in "cb" and name.startswith("dev/"):
            continue
        sizes[name] = size
        kind = "-" if perms[0] == "h" else perms[0]
        rows[tuple(name.split("/"))] = [kind + perms[1:], owner, size, name, link]
    for row in rows.values():
        if row[4].startswith(" link to "):
            row[2] = sizes[row[4][len(" link to "):]]
    for key in sorted(rows, key=lambda k: [p.encode() for p in k]):
        perms, owner, size, name, link = rows[key]
        print(f"{perms} {owner} {size} {name}{link}")


if __name__ == "__main__":
    if sys.argv[1] == "hostile":
        write(sys.argv[3], HOSTILE[sys.argv[2]])
    elif sys.argv[1] == "kinds":
        print(" ".join(HOSTILE))
    elif sys.argv[1] == "whiteouts":
        whiteouts(sys.argv[2])
    elif sys.argv[1] == "lower":
        lower(sys.argv[2])
    elif sys.argv[1] == "tools":
        tools(sys.argv[2])
    elif sys.argv[1] == "image":
        image(sys.argv[2])
    elif sys.argv[1] == "link":
        write(sys.argv[4], [member(sys.argv[2], tarfile.SYMTYPE, linkname=sys.argv[3])])
    else:
        tv(sys.argv[2])

#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Standard library only. The output is deterministic (mtimes, owners and gzip
headers are fixed), so re-running this script changes nothing in git unless
the script itself changed. Run from anywhere:

    python3 fuzz/make-seeds.py

Seeds are small valid inputs plus hostile ones that the parsers must refuse
cleanly (no panic, no hang, no unbounded allocation).
"""

import gzip
import io
import os
import struct
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
HEX = "0123456789abcdef" * 4  # 64 hex digits


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- tar_ingest


def info(name, kind=tarfile.REGTYPE, size=0, mode=0o644, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.linkname = link
    return ti


def tar(entries, fmt=tarfile.USTAR_FORMAT, pax_headers=None, end=512):
    """entries: (name, kind, data_or_None, mode, link) tuples. `end` bytes of
    zeros close the archive: two blocks as tar writes them, or one (slicebox
    stops at the first), which keeps the many hostile seeds small."""
    buf = io.BytesIO()
    kwargs = {"format": fmt}
    if pax_headers is not None:
        kwargs["pax_headers"] = pax_headers
    with tarfile.open(fileobj=buf, mode="w", **kwargs) as t:
        for e in entries:
            name, kind, data, mode, link = e
            data = data or b""
            ti = info(name, kind, len(data) if kind == tarfile.REGTYPE else 0, mode, link)
            t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    # tarfile pads the archive to a 10 KiB record; keep only the two
    # end-of-archive blocks, so the seeds stay small. (No seed's last file
    # ends in a whole block of zeros, so nothing but padding is cut.)
    body = buf.getvalue().rstrip(b"\0")
    return body + b"\0" * (-len(body) % 512) + b"\0" * end


def gz(data):
    # mtime=0 and no file name: byte-identical output on every run.
    return gzip.compress(data, compresslevel=9, mtime=0)


def zstd_raw(data):
    """A zstd frame of raw (uncompressed) blocks: no zstd module needed."""
    frame = bytearray(b"\x28\xb5\x2f\xfd")
    # Frame header descriptor: single segment, 4-byte content size.
    frame.append(0b10100000)
    frame += struct.pack("<I", len(data))
    max_block = 128 * 1024
    pos = 0
    while True:
        chunk = data[pos : pos + max_block]
        pos += len(chunk)
        last = pos >= len(data)
        # Block header: last bit, type 0 (raw), size << 3; 3 bytes LE.
        header = (len(chunk) << 3) | (0 << 1) | int(last)
        frame += struct.pack("<I", header)[:3]
        frame += chunk
        if last:
            return bytes(frame)


def header_block(name, typeflag, size=0, link=b"", mode=b"0000644\0", size_field=None):
    """A hand-made ustar header, for what tarfile will not write."""
    b = bytearray(512)
    b[0 : len(name)] = name
    b[100:108] = mode
    b[108:116] = b"0000000\0"
    b[116:124] = b"0000000\0"
    b[124:136] = size_field if size_field is not None else b"%011o\0" % size
    b[136:148] = b"00000000000\0"
    b[156] = typeflag
    b[157 : 157 + len(link)] = link
    b[257:263] = b"ustar\0"
    b[263:265] = b"00"
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)


def pad(data):
    return data + b"\0" * (-len(data) % 512)


def pax_record(key, value):
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


END = b"\0" * 512  # one zero block ends the archive for slicebox

R, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE

basic = tar(
    [
        ("bin/", D, None, 0o755, ""),
        ("bin/tool", R, b"#!/bin/sh\necho hi\n", 0o755, ""),
        ("share/", D, None, 0o755, ""),
        ("share/readme", R, b"hello\n", 0o644, ""),
        ("share/empty", R, b"", 0o644, ""),
        ("share/link", S, None, 0o777, "readme"),
        ("share/hard", H, None, 0o644, "share/readme"),
    ],
    end=1024,
)
ONE = tar([("f", R, b"x", 0o644, "")], end=1024)
seeds_tar = {
    "basic.tar": basic,
    "basic.tar.gz": gz(basic),
    "one-file.tar": ONE,
    "one-file.tar.zst": zstd_raw(ONE),
    "dot-slash.tar": tar([("./", D, None, 0o755, ""), ("./a/./b", R, b"b", 0o644, "")]),
    "empty.tar": b"\0" * 1024,
    "no-end-blocks.tar": tar([("f", R, b"abc", 0o644, "")])[:1024],
    "multi-member.tar.gz": gz(basic[:512 * 4]) + gz(basic[512 * 4 :]),
    "setuid.tar": tar([("suid", R, b"x", 0o4755, "")]),
    # Hostile names.
    "dotdot.tar": tar([("../evil", R, b"x", 0o644, "")]),
    "dotdot-inner.tar": tar([("a/../../evil", R, b"x", 0o644, "")]),
    "absolute.tar": tar([("/etc/passwd", R, b"x", 0o644, "")]),
    "duplicate.tar": tar([("a", R, b"1", 0o644, ""), ("a", R, b"2", 0o644, "")]),
    "below-symlink.tar": tar([("a", S, None, 0o777, "/etc"), ("a/passwd", R, b"x", 0o644, "")]),
    "below-file.tar": tar([("a", R, b"1", 0o644, ""), ("a/b", R, b"2", 0o644, "")]),
    "dir-over-file.tar": tar([("a", R, b"1", 0o644, ""), ("a/", D, None, 0o755, "")]),
    "symlink-no-target.tar": tar([("l", S, None, 0o777, "")]),
    # Hardlink tricks.
    "hardlink-outside.tar": tar([("h", H, None, 0o644, "../etc/shadow")]),
    "hardlink-absolute.tar": tar([("h", H, None, 0o644, "/etc/shadow")]),
    "hardlink-forward.tar": tar([("h", H, None, 0o644, "later"), ("later", R, b"x", 0o644, "")]),
    "hardlink-to-dir.tar": tar([("d/", D, None, 0o755, ""), ("h", H, None, 0o644, "d")]),
    "hardlink-via-symlink.tar": tar(
        [("f", R, b"x", 0o644, ""), ("l", S, None, 0o777, "f"), ("h", H, None, 0o644, "l")]
    ),
    "hardlink-self.tar": tar([("h", H, None, 0o644, "h")]),
    "hardlink-many.tar": tar(
        [("f", R, b"x" * 10, 0o644, "")] + [("h%d" % i, H, None, 0o644, "f") for i in range(4)]
    ),
    # Kinds slicebox refuses.
    "chardev.tar": tar([("null", tarfile.CHRTYPE, None, 0o666, "")]),
    "fifo.tar": tar([("fifo", tarfile.FIFOTYPE, None, 0o644, "")]),
    "contiguous.tar": tar([("c", tarfile.CONTTYPE, b"", 0o644, "")]),
    "unknown-type.tar": header_block(b"q", ord("Z")) + END,
    "dir-with-data.tar": header_block(b"d/", ord("5"), 10) + pad(b"0123456789") + END,
    # pax.
    "pax-long-path.tar": tar(
        [("p/" + "n" * 150 + "/file", R, b"pax", 0o644, ""),
         ("l", S, None, 0o777, "t" * 120)],
        fmt=tarfile.PAX_FORMAT,
    ),
    "pax-size.tar": header_block(b"pax", ord("x"), len(pax_record(b"size", b"300")))
    + pad(pax_record(b"size", b"300"))
    + header_block(b"f", ord("0"), 0)
    + pad(b"s" * 300)
    + END,
    "pax-size-mismatch.tar": header_block(b"pax", ord("x"), len(pax_record(b"size", b"300")))
    + pad(pax_record(b"size", b"300"))
    + header_block(b"f", ord("0"), 10)
    + pad(b"s" * 300)
    + END,
    "pax-global-path.tar": header_block(b"g", ord("g"), len(pax_record(b"path", b"evil")))
    + pad(pax_record(b"path", b"evil"))
    + header_block(b"f", ord("0"), 0)
    + END,
    "pax-global-harmless.tar": tar(
        [("f", R, b"1", 0o644, "")], fmt=tarfile.PAX_FORMAT, pax_headers={"comment": "hi"}
    ),
    "pax-sparse.tar": header_block(b"pax", ord("x"), len(pax_record(b"GNU.sparse.major", b"1")))
    + pad(pax_record(b"GNU.sparse.major", b"1"))
    + header_block(b"f", ord("0"), 0)
    + END,
    "pax-dotdot-path.tar": header_block(b"pax", ord("x"), len(pax_record(b"path", b"../x")))
    + pad(pax_record(b"path", b"../x"))
    + header_block(b"safe", ord("0"), 0)
    + END,
    "pax-twice.tar": header_block(b"p1", ord("x"), len(pax_record(b"path", b"a")))
    + pad(pax_record(b"path", b"a"))
    + header_block(b"p2", ord("x"), len(pax_record(b"path", b"b")))
    + pad(pax_record(b"path", b"b"))
    + header_block(b"f", ord("0"), 0)
    + END,
    "pax-malformed.tar": header_block(b"pax", ord("x"), 12) + pad(b"99 path=x\n\0\0") + END,
    "pax-then-eof.tar": header_block(b"pax", ord("x"), len(pax_record(b"path", b"a")))
    + pad(pax_record(b"path", b"a")),
    # GNU long names and links, base-256 numbers.
    "gnu-long-name.tar": tar(
        [("g/" + "L" * 200, R, b"gnu", 0o644, ""),
         ("g/sym", S, None, 0o777, "T" * 150),
         ("g/hard", H, None, 0o644, "g/" + "L" * 200)],
        fmt=tarfile.GNU_FORMAT,
    ),
    "gnu-base256.tar": header_block(
        b"big", ord("0"), size_field=b"\x80" + b"\0" * 10 + b"\x03"
    )
    + pad(b"abc")
    + END,
    "gnu-base256-negative.tar": header_block(b"neg", ord("0"), size_field=b"\xff" * 12) + END,
    "gnu-sparse-type.tar": header_block(b"sp", ord("S")) + END,
    "gnu-long-name-huge.tar": header_block(b"././@LongLink", ord("L"), 1 << 21) + END,
    "gnu-long-name-twice.tar": header_block(b"././@LongLink", ord("L"), 2)
    + pad(b"a\0")
    + header_block(b"././@LongLink", ord("L"), 2)
    + pad(b"b\0")
    + header_block(b"f", ord("0"), 0)
    + END,
    # Damaged streams.
    "truncated-header.tar": basic[:300],
    "truncated-data.tar": tar([("f", R, b"y" * 1000, 0o644, "")])[: 512 + 700],
    "truncated-padding.tar": tar([("f", R, b"y" * 10, 0o644, "")])[: 512 + 100],
    "truncated.tar.gz": gz(basic)[:-40],
    "truncated.tar.zst": zstd_raw(ONE)[:600],
    "bad-checksum.tar": bytes([ONE[0] ^ 1]) + ONE[1:],
    "bad-octal.tar": header_block(b"f", ord("0"), size_field=b"00000000009\0") + END,
    "huge-size.tar": header_block(b"f", ord("0"), size_field=b"77777777777\0") + END,
    "garbage-after-gzip.tar.gz": gz(basic) + b"not gzip at all",
    # Limits.
    "deep.tar": tar([("/".join(["d"] * 600) + "/f", R, b"", 0o644, "")], fmt=tarfile.PAX_FORMAT),
    "long-component.tar": tar([("c" * 300, R, b"", 0o644, "")], fmt=tarfile.PAX_FORMAT),
}
for name, data in seeds_tar.items():
    out("tar_ingest", name, data)

# ------------------------------------------------------------- manifest_json

TREE = "sha256:" + HEX
manifests = {
    "valid.json": '{"format":1,"tree":"%s","mount_point":"/opt/x","env":["A=1"],"files":1,"bytes":3}'
    % TREE,
    "pretty.json": '{\n  "format": 1,\n  "tree": "%s",\n  "mount_point": "/opt/tool",\n'
    '  "env": [\n    "PATH=/opt/tool/bin",\n    "LANG=C.UTF-8"\n  ],\n  "files": 120,\n'
    '  "bytes": 18446744073709551615\n}\n' % TREE,
    "no-env.json": '{"format":1,"tree":"%s","mount_point":"/opt/x","env":[],"files":0,"bytes":0}' % TREE,
    "format-2.json": '{"format":2,"tree":"%s","mount_point":"/opt/x","env":[],"files":0,"bytes":0}' % TREE,
    "missing-tree.json": '{"format":1,"mount_point":"/opt/x","env":[],"files":0,"bytes":0}',
    "extra-field.json": '{"format":1,"tree":"%s","mount_point":"/opt/x","env":[],"files":0,"bytes":0,"x":[1,{"y":null}]}'
    % TREE,
    "bad-digest.json": '{"format":1,"tree":"sha256:XYZ","mount_point":"/opt/x","env":[],"files":0,"bytes":0}',
    "uppercase-digest.json": '{"format":1,"tree":"sha256:%s","mount_point":"/","env":[],"files":0,"bytes":0}'
    % HEX.upper(),
    "escapes.json": '{"format":1,"tree":"%s","mount_point":"/opt/\\u00e9\\n\\ud83d\\ude00","env":["A=\\u0000"],"files":1,"bytes":1}'
    % TREE,
    "lone-surrogate.json": '{"format":1,"tree":"%s","mount_point":"/opt/\\ud800","env":[],"files":1,"bytes":1}'
    % TREE,
    "negative.json": '{"format":1,"tree":"%s","mount_point":"/opt/x","env":[],"files":-1,"bytes":1e400}' % TREE,
    "duplicate-key.json": '{"format":1,"format":1,"tree":"%s","mount_point":"/opt/x","env":[],"files":0,"bytes":0}'
    % TREE,
    "deep.json": "[" * 200 + "]" * 200,
    "not-object.json": '"just a string"',
    "trailing.json": '{"format":1,"tree":"%s","mount_point":"/opt/x","env":[],"files":0,"bytes":0} {}' % TREE,
}
for name, text in manifests.items():
    out("manifest_json", name, text.encode())


# ------------------------------------------------------------------ listing


def lp(b):
    return b"%d:" % len(b) + b


def line(kind, payload, size, path):
    return kind + b" " + payload + b" " + b"%d" % size + b" " + lp(path) + b"\n"


H1 = HEX.encode()
H2 = ("fedcba9876543210" * 4).encode()
valid_listing = (
    line(b"d", b"-", 0, b"bin")
    + line(b"x", H1, 12, b"bin/tool")
    + line(b"d", b"-", 0, b"share")
    + line(b"l", lp(b"../bin/tool"), 0, b"share/link")
    + line(b"f", H2, 3, b"share/readme")
)
listings = {
    "valid": valid_listing,
    "one-file": line(b"f", H1, 1, b"a"),
    "empty": b"",
    "awkward-names": line(b"d", b"-", 0, b"dir with space")
    + line(b"x", H1, 1, b"dir with space/new\nline: 12")
    + line(b"l", lp(b"../a b:\n"), 0, b"link"),
    "conflict": line(b"f", H1, 1, b"a") + line(b"f", H2, 1, b"a/b"),
    "dir-twice": line(b"d", b"-", 0, b"a") + line(b"d", b"-", 0, b"a"),
    "deep": line(b"f", H1, 1, b"/".join([b"d"] * 300)),
    "dotdot": line(b"f", H1, 1, b"../../x") + line(b"f", H1, 1, b"a//b/./c"),
    "bad-kind": b"q - 0 1:a\n",
    "bad-hex": b"f zz 1 1:a\n",
    "short-path": b"d - 0 5:a\n",
    "short-target": b"l 3:ab 0 1:a\n",
    "huge-len": b"l 18446744073709551615:a 0 1:a\n",
    "no-newline": line(b"f", H1, 1, b"a")[:-1],
    "big-size": line(b"f", H1, 18446744073709551615, b"a"),
}
for name, data in listings.items():
    out("listing", name, data)

# --------------------------------------------------------------------- args

arg_lists = {
    "sandbox": ["--slice", "a", "--net=none", "--", "ls"],
    "sandbox-full": [
        "--slice", "tool:/opt/t", "--bind", "/src:/dst", "--ro-bind=/etc", "--chdir", "/",
        "--no-cwd", "--fd", "3", "--env", "A=1", "--unsetenv", "B", "--clearenv", "sh", "-c", "x",
    ],
    "slice-add": ["name", "./dir", "--at", "/opt/name", "--env=PATH=/opt/name/bin", "--limit", "bytes=1G"],
    "help": ["-h"],
    "json": ["--json", "sha256:" + HEX],
    "bad-option": ["--nope", "-x"],
    "missing-value": ["--slice"],
    "switch-with-value": ["--clearenv=1"],
    "dashes": ["--", "--", "-", ""],
    "empty": [""],
}
for name, args in arg_lists.items():
    out("args", name, b"\0".join(a.encode() for a in args))
out("args", "non-utf8", b"--env\0\xff\xfe=\x80\0--slice=\xc3\0cmd")

# -------------------------------------------------------------- interpreter


def elf64(interp, runpath):
    """A little-endian ELF64 file: PT_INTERP, PT_LOAD, PT_DYNAMIC with DT_RUNPATH."""
    f = bytearray(0x400)
    f[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<QHH", f, 32, 64, 0, 0)
    struct.pack_into("<HH", f, 54, 56, 3)
    for i, (kind, off, vaddr, size) in enumerate(
        [(3, 0x200, 0x200, len(interp) + 1), (1, 0, 0x10000, 0x400), (2, 0x300, 0x10300, 48)]
    ):
        struct.pack_into("<IIQQQQ", f, 64 + i * 56, kind, 0, off, vaddr, 0, size)
    f[0x200 : 0x200 + len(interp)] = interp
    struct.pack_into("<QQQQQQ", f, 0x300, 5, 0x10380, 29, 1, 0, 0)
    f[0x381 : 0x381 + len(runpath)] = runpath
    return bytes(f)


out("interpreter", "script", b"#!/opt/python/bin/python3.10 -E\nprint()\n")
out("interpreter", "env-script", b"#! /usr/bin/env python3\n")
out("interpreter", "elf64", elf64(b"/lib64/ld-linux-x86-64.so.2", b"/opt/p/lib:$ORIGIN/../lib"))

# --------------------------------------------------------------- image_json
# Parts cut at "\n--\n": index.json, then blobs 1..7; "@N" is blob N's
# digest and "#N" its size (src/fuzzing.rs, `image`).

SEP = b"\n--\n"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in [("etc/hello", b"hi\n"), (".wh.gone", b""), ("opq/.wh..wh..opq", b"")]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_seed(*parts):
    return SEP.join(p.encode() if isinstance(p, str) else p for p in parts)


def manifest(layer_type, config="@2", layer="@3"):
    return (
        '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
        '"digest":"%s","size":#%s},"layers":[{"mediaType":"%s","digest":"%s","size":#%s}]}'
        % (OCI_MANIFEST, config, config[1:], layer_type, layer, layer[1:])
    )


def config(arch="amd64", diff="@3"):
    return (
        '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin","A=1"],"WorkingDir":"/root",'
        '"User":"0:0","Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"]},'
        '"rootfs":{"type":"layers","diff_ids":["%s"]}}' % (arch, diff)
    )


TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"
GZ_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX_OF_1 = '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"@1","size":#1}]}' % OCI_MANIFEST
tar_bytes = layer_tar()
gz = gzip.compress(tar_bytes, mtime=0)
out("image_json", "plain-layer", image_seed(INDEX_OF_1, manifest(TAR_LAYER), config(), tar_bytes))
out(
    "image_json",
    "gzip-layer",
    image_seed(INDEX_OF_1, manifest(GZ_LAYER, layer="@4"), config(diff="@3"), tar_bytes, gz),
)
out(
    "image_json",
    "two-platforms",
    image_seed(
        '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"@1","size":#1}]}' % OCI_INDEX,
        '{"schemaVersion":2,"mediaType":"%s","manifests":['
        '{"mediaType":"%s","digest":"@2","size":#2,"platform":{"os":"linux","architecture":"amd64"}},'
        '{"mediaType":"%s","digest":"@3","size":#3,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}'
        % (OCI_INDEX, OCI_MANIFEST, OCI_MANIFEST),
        manifest(TAR_LAYER, config="@4", layer="@6"),
        manifest(TAR_LAYER, config="@5", layer="@6"),
        config(diff="@6"),
        config(arch="arm64", diff="@6"),
        tar_bytes,
    ),
)
out("image_json", "bad-digest", image_seed(
    '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"sha256:../../etc/passwd","size":2}]}' % OCI_MANIFEST))
out("image_json", "unknown-media-type", image_seed(
    INDEX_OF_1, manifest("application/vnd.example.squashfs"), config(), tar_bytes))

if __name__ == "__main__":
    for target in sorted(os.listdir(CORPUS)):
        d = os.path.join(CORPUS, target)
        files = os.listdir(d)
        total = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        print("%-14s %3d files %7d bytes" % (target, len(files), total))

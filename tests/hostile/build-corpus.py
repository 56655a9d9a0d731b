#!/usr/bin/env python3
"""Builds the corpus of hostile archives that `slice-add` must refuse.

Usage: build-corpus.py OUTDIR

Writes every archive into OUTDIR, plus OUTDIR/expected.tsv with one line
per case (lines starting with '#' are comments), four tab-separated
columns:

  file      the archive's name in OUTDIR (also the case's name)
  outcome   `reject` (exit status 1, store unchanged) or `accept`
  limits    `-`, or comma-separated KEY=VALUE, each passed as --limit
  expect    for `reject`: a fragment stderr must contain, verbatim;
            for `accept`: a property of the stored slice, one of
              modes PATH=OCTAL...   those paths have exactly these
                                    permission bits, and no path of the
                                    tree has a setuid, setgid or sticky bit
              file-hex HEX          the tree holds a regular file whose
                                    name is these bytes

Only the standard library is used. Headers tarfile cannot write (or
would refuse to write) are crafted by hand, checksums included. Nothing
big is ever held in memory or written to disk: the decompression bomb is
one compressed block of zeros repeated, with its CRC computed by
combining CRCs, so the whole corpus takes a few MB and a few seconds.
"""

import gzip
import io
import os
import random
import sys
import tarfile
import zlib

BLOCK = 512
KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
DEFAULT_BYTES_LIMIT = 64 * GIB
DEFAULT_FILE_LIMIT = 64 * GIB


# --- raw tar ------------------------------------------------------------

def size_field(size):
    """12 bytes: octal when it fits, else GNU base-256 (high bit set)."""
    if 0 <= size < 8 ** 11:
        return b"%011o\0" % size
    if size < 0:
        # Negative base-256: 0xff fill, two's complement.
        return (size & ((1 << 96) - 1)).to_bytes(12, "big")
    return bytes([0x80]) + size.to_bytes(11, "big")


def header(name, typ=b"0", size=0, mode=0o644, link=b"", prefix=b"",
           bad_checksum=False, raw_size=None):
    """One ustar header block. `name` and `link` are bytes of at most 100
    bytes, `prefix` at most 155; `raw_size` replaces the size field."""
    assert len(name) <= 100 and len(link) <= 100 and len(prefix) <= 155
    b = bytearray(BLOCK)
    b[0:len(name)] = name
    b[100:108] = b"%07o\0" % mode
    b[108:116] = b"0001750\0"  # uid 1000
    b[116:124] = b"0001750\0"  # gid 1000
    b[124:136] = raw_size if raw_size is not None else size_field(size)
    b[136:148] = b"%011o\0" % 1700000000
    b[156:157] = typ
    b[157:157 + len(link)] = link
    b[257:265] = b"ustar\x0000"
    b[265:269] = b"user"
    b[297:302] = b"group"
    b[345:345 + len(prefix)] = prefix
    b[148:156] = b" " * 8
    checksum = sum(b)
    if bad_checksum:
        checksum += 1
    b[148:156] = b"%06o\0 " % checksum
    return bytes(b)


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def entry(name, data=b"", typ=b"0", mode=0o644, link=b"", size=None, **kw):
    """A header with its padded data; `size` may lie about the data."""
    return header(name, typ, len(data) if size is None else size, mode, link, **kw) + pad(data)


def pax_record(key, value):
    """`LEN key=value\\n`, LEN counting the whole record, itself included."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def pax(records, typ=b"x", name=b"PaxHeaders/entry"):
    data = b"".join(pax_record(k, v) for k, v in records)
    return entry(name, data, typ)


def gnu_long(typ, value):
    """A GNU long name (L) or long link name (K) header with its data."""
    return entry(b"././@LongLink", value + b"\0", typ)


def archive(*parts):
    return b"".join(parts) + b"\0" * (2 * BLOCK)


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def with_tarfile(members, fmt=tarfile.GNU_FORMAT):
    """An archive written by tarfile: `members` are (TarInfo, data)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt,
                      encoding="utf-8", errors="surrogateescape") as t:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def info(name, typ=tarfile.REGTYPE, mode=0o644, link=""):
    i = tarfile.TarInfo(name)
    i.type, i.mode, i.linkname = typ, mode, link
    i.uname = i.gname = "user"
    return i


# --- a gzip stream of many zeros, never materialised ---------------------

def _gf2_times(mat, vec):
    total, i = 0, 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _gf2_square(mat):
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1, crc2, len2):
    """zlib's crc32_combine: the CRC of A+B from CRC(A), CRC(B), len(B)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << (n - 1) for n in range(1, 32)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def zeros_crc(n, chunk_crc, chunk):
    """CRC-32 of n zero bytes, n a multiple of `chunk` (by doubling)."""
    assert n % chunk == 0
    result, result_len = 0, 0
    power, power_len = chunk_crc, chunk
    count = n // chunk
    while count:
        if count & 1:
            result = crc32_combine(result, power, power_len)
            result_len += power_len
        power = crc32_combine(power, power, power_len)
        power_len *= 2
        count >>= 1
    return result


def gzip_of_zeros(prefix, zeros, suffix_zeros, out, chunk=MIB):
    """Writes to `out` a gzip stream of prefix + `zeros` zero bytes +
    `suffix_zeros` zero bytes. The zeros are one deflate block sequence
    (ended by a full flush: byte-aligned, no back-references before it)
    written zeros/chunk times, so compressing costs one chunk."""
    assert zeros % chunk == 0
    out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # no name, mtime 0, OS unknown
    co = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    out.write(co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH))
    block = co.compress(b"\0" * chunk) + co.flush(zlib.Z_FULL_FLUSH)
    for _ in range(zeros // chunk):
        out.write(block)
    out.write(co.compress(b"\0" * suffix_zeros) + co.flush(zlib.Z_FINISH))
    chunk_crc = zlib.crc32(b"\0" * chunk)
    crc = zlib.crc32(prefix)
    crc = crc32_combine(crc, zeros_crc(zeros, chunk_crc, chunk), zeros)
    crc = crc32_combine(crc, zlib.crc32(b"\0" * suffix_zeros), suffix_zeros)
    total = len(prefix) + zeros + suffix_zeros
    out.write((crc & 0xFFFFFFFF).to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little"))


def zstd_of_zeros(prefix, zeros):
    """A zstd frame of `prefix` (one raw block) then `zeros` zero bytes as
    RLE blocks: 4 bytes of input per 128 KiB of output, the format's
    highest ratio (32,768)."""
    def block(kind, size, last, payload):
        # last bit, type (0 raw, 1 RLE), size << 3: 3 bytes, little-endian
        return ((size << 3) | (kind << 1) | int(last)).to_bytes(3, "little") + payload
    # No checksum, no content size; window 2^(10+7) = 128 KiB.
    frame = bytearray(b"\x28\xb5\x2f\xfd\x00" + bytes([7 << 3]))
    frame += block(0, len(prefix), False, prefix)
    left = zeros
    while left > 0:
        n = min(128 * KIB, left)
        left -= n
        frame += block(1, n, left == 0, b"\0")
    return bytes(frame)


def self_check_gzip_of_zeros():
    """The trick above, checked against gzip on a small instance."""
    out = io.BytesIO()
    gzip_of_zeros(b"head", 5 * 4096, 100, out, chunk=4096)
    assert gzip.decompress(out.getvalue()) == b"head" + b"\0" * (5 * 4096 + 100)


# --- the corpus -----------------------------------------------------------

CASES = []


def case(file, outcome, limits, expect, data):
    CASES.append((file, outcome, limits, expect, data))


def reject(file, expect, data, limits="-"):
    case(file, "reject", limits, expect, data)


NOT_EARLIER = "which is not an earlier regular file of this archive"


def escapes():
    reject("dotdot.tar", "entry '..' contains '..'",
           archive(entry(b"..", typ=b"5", mode=0o755)))
    reject("dotdot-inside.tar", "entry 'a/../../x' contains '..'",
           archive(entry(b"a/", typ=b"5", mode=0o755), entry(b"a/../../x", b"escaped\n")))
    reject("absolute.tar", "entry '/etc/passwd' is an absolute path",
           archive(entry(b"/etc/passwd", b"root::0:0::/:/bin/sh\n")))
    reject("ustar-prefix-dotdot.tar", "entry '../etc/passwd' contains '..'",
           archive(entry(b"etc/passwd", b"x\n", prefix=b"..")))
    reject("gnu-longname-absolute.tar", "is an absolute path",
           archive(gnu_long(b"L", b"/etc/cron.d/" + b"x" * 120), entry(b"harmless", b"* * * * * root sh\n")))
    reject("below-symlink.tar", "entry 'link/passwd' lies below a symlink",
           with_tarfile([(info("link", tarfile.SYMTYPE, 0o777, "/etc"), b""),
                         (info("link/passwd"), b"root::0:0::/:/bin/sh\n")]))
    reject("below-symlink-dotslash.tar", "lies below a symlink",
           archive(entry(b"./up", typ=b"2", link=b".."), entry(b"./up/escaped", b"x\n")))
    reject("below-file.tar", "entry 'f/x' lies below a file",
           archive(entry(b"f", b"plain\n"), entry(b"f/x", b"below\n")))
    reject("hardlink-to-later.tar", "entry 'h' is a hardlink to 'later', " + NOT_EARLIER,
           archive(entry(b"h", typ=b"1", link=b"later"), entry(b"later", b"data\n")))
    reject("hardlink-to-symlink.tar", "entry 'h' is a hardlink to 'link', " + NOT_EARLIER,
           archive(entry(b"link", typ=b"2", link=b"/etc/shadow"), entry(b"h", typ=b"1", link=b"link")))
    reject("hardlink-to-directory.tar", "entry 'h' is a hardlink to 'd', " + NOT_EARLIER,
           archive(entry(b"d/", typ=b"5", mode=0o755), entry(b"h", typ=b"1", link=b"d")))
    reject("hardlink-outside.tar", "entry 'h' is a hardlink to '../outside', " + NOT_EARLIER,
           archive(entry(b"h", typ=b"1", link=b"../outside")))
    reject("hardlink-absolute.tar", "is a hardlink to '/etc/shadow', " + NOT_EARLIER,
           with_tarfile([(info("h", tarfile.LNKTYPE, link="/etc/shadow"), b"")]))
    reject("hardlink-through-symlink.tar", "entry 'h' is a hardlink to 'l/passwd', " + NOT_EARLIER,
           archive(entry(b"l", typ=b"2", link=b"/etc"), entry(b"h", typ=b"1", link=b"l/passwd")))
    reject("hardlink-to-itself.tar", "entry 'h' is a hardlink to 'h', " + NOT_EARLIER,
           archive(entry(b"h", typ=b"1", link=b"h")))


def special_entries():
    reject("char-device.tar", "entry 'dev/mem' is a device node",
           with_tarfile([(info("dev/mem", tarfile.CHRTYPE, 0o666), b"")]))
    reject("block-device.tar", "entry 'sda' is a device node",
           archive(entry(b"sda", typ=b"4", mode=0o660)))
    reject("fifo.tar", "entry 'pipe' is a fifo",
           with_tarfile([(info("pipe", tarfile.FIFOTYPE), b"")]))
    reject("duplicate.tar", "entry './f' appears twice in the archive",
           archive(entry(b"f", b"first\n"), entry(b"./f", b"second\n")))
    reject("dir-file-conflict.tar", "entry 'd' conflicts with a directory of the same name",
           archive(entry(b"d/f", b"inside\n"), entry(b"d", b"file over the directory\n")))
    reject("gnu-sparse.tar", "entry 'sparse' is a sparse file, which is not supported",
           archive(entry(b"sparse", typ=b"S")))
    reject("pax-gnu-sparse.tar", "it holds a sparse file, which is not supported",
           archive(pax([(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
                        (b"GNU.sparse.name", b"sparse"), (b"GNU.sparse.realsize", b"1099511627776")]),
                   entry(b"GNUSparseFile.0/sparse", b"")))
    reject("unknown-type.tar", "entry 'odd' has the unsupported entry type 'Z'",
           archive(entry(b"odd", typ=b"Z")))
    reject("symlink-no-target.tar", "entry 'dangling' is a symlink without a target",
           archive(entry(b"dangling", typ=b"2")))
    reject("empty-name.tar", "has an empty name",
           archive(entry(b"./", b"data for no name\n")))
    reject("dir-with-data.tar", "entry 'd/' claims 10 bytes of data, but only regular files have data",
           archive(entry(b"d/", b"0123456789", typ=b"5", mode=0o755)))
    reject("symlink-with-data.tar", "claims 4 bytes of data, but only regular files have data",
           archive(entry(b"l", b"data", typ=b"2", link=b"target")))


def limits_and_extensions():
    deep = b"a/" * 100_000
    deep_tar = archive(pax([(b"path", deep)]), entry(b"deep/", typ=b"5", mode=0o755))
    assert 190 * KIB < len(deep_tar) < 220 * KIB
    reject("deep-100000.tar", "is 100000 levels deep, more than the limit of 512 (--limit depth=N raises it)",
           deep_tar)
    # With both limits raised the entry passes the budget and must be
    # stored or refused cleanly; the expectation is filled in by RAISED.
    case("deep-100000-raised-limits.tar", *RAISED_DEEP, data=deep_tar)
    reject("name-300.tar", "has a name of 300 bytes, more than the limit of 255 (--limit name=N raises it)",
           archive(pax([(b"path", b"d/" + b"n" * 300)]), entry(b"short", b"x\n")))
    # One byte over NAME_MAX, the most Linux takes; --limit name= cannot
    # be raised past it (tests/store.rs checks that refusal).
    reject("name-256.tar", "has a name of 256 bytes, more than the limit of 255",
           archive(pax([(b"path", b"d/" + b"n" * 256)]), entry(b"short", b"x\n")))
    long_path = b"/".join([b"p" * 100] * 50)
    assert len(long_path) == 5049
    reject("path-5000-pax.tar", "has a path of 5049 bytes, more than the limit of 4095 (--limit path=N raises it)",
           archive(pax([(b"path", long_path)]), entry(b"short", b"x\n")))
    reject("gnu-longname-2MiB.tar.gz",
           "a GNU long name of 2097152 bytes is larger than the limit of 1048576 bytes",
           gz(archive(entry(b"././@LongLink", b"n" * (2 * MIB - 1) + b"\0", b"L"), entry(b"f", b"x\n"))))
    reject("gnu-longlink-2MiB.tar.gz",
           "a GNU long link name of 2097152 bytes is larger than the limit of 1048576 bytes",
           gz(archive(entry(b"././@LongLink", b"t" * (2 * MIB - 1) + b"\0", b"K"),
                      entry(b"l", typ=b"2", link=b"short"))))
    big_pax = pax_record(b"comment", b"c" * (MIB + 100))
    reject("pax-header-over-1MiB.tar.gz",
           "a pax header of %d bytes is larger than the limit of 1048576 bytes" % len(big_pax),
           gz(archive(entry(b"PaxHeaders/f", big_pax, b"x"), entry(b"f", b"x\n"))))
    reject("pax-size-disagrees.tar", "entry 'f' its pax size (300) disagrees with its header size (10)",
           archive(pax([(b"size", b"300")]), entry(b"f", b"\x01" * 300, size=10)))
    reject("pax-size-zero.tar", "entry 'f' its pax size (0) disagrees with its header size (10)",
           archive(pax([(b"size", b"0")]), entry(b"f", b"0123456789")))
    reject("pax-size-twice.tar", "two pax sizes describe one entry",
           archive(pax([(b"size", b"3"), (b"size", b"5")]), entry(b"f", b"abc", size=0)))
    reject("pax-path-twice.tar", "two pax paths describe one entry",
           archive(pax([(b"path", b"one")]), pax([(b"path", b"two")]), entry(b"f", b"x\n")))
    reject("pax-malformed.tar", "a pax header is malformed",
           archive(entry(b"PaxHeaders/f", b"99 path=short\n", b"x"), entry(b"f", b"x\n")))
    reject("pax-at-end.tar", "it ends after an extended header, with no entry for it",
           pax([(b"path", b"nothing/follows")]))
    reject("global-pax-path.tar",
           "a global pax header sets 'path' for every entry that follows, which is not supported",
           archive(pax([(b"path", b"etc/passwd")], typ=b"g", name=b"GlobalHead"), entry(b"f", b"x\n")))
    reject("global-pax-size.tar", "a global pax header sets 'size'",
           archive(pax([(b"size", b"0")], typ=b"g", name=b"GlobalHead"), entry(b"f", b"x\n")))
    reject("pax-path-dotdot.tar", "entry 'ok/../../../etc/passwd' contains '..'",
           archive(pax([(b"path", b"ok/../../../etc/passwd")]), entry(b"harmless", b"x\n")))
    reject("pax-linkpath-outside.tar",
           "entry 'h' is a hardlink to '../../../etc/shadow', " + NOT_EARLIER,
           archive(entry(b"ok", b"x\n"), pax([(b"linkpath", b"../../../etc/shadow")]),
                   entry(b"h", typ=b"1", link=b"ok")))
    # A NUL inside a name or link target (only pax can carry one) cannot
    # be given to the kernel: refused, naming the entry, before staging.
    reject("pax-path-nul.tar", "entry 'a\\u{0}b' has a NUL byte in its name",
           archive(pax([(b"path", b"a\0b")]), entry(b"harmless", b"x\n")))
    reject("pax-linkpath-nul.tar", "entry 'l' has a NUL byte in its link target",
           archive(pax([(b"linkpath", b"tar\0get")]), entry(b"l", typ=b"2", link=b"harmless")))
    # No symlink target may be longer than PATH_MAX (4096 with its NUL).
    reject("symlink-target-8000.tar", "entry 'l' is a symlink to a target of 8000 bytes",
           archive(pax([(b"linkpath", b"t/" * 4000)]), entry(b"l", typ=b"2", link=b"harmless")))


def damaged():
    good = entry(b"f", b"hello\n")
    reject("bad-checksum.tar", "the header at byte 1024 has a wrong checksum",
           archive(good, header(b"g", size=0, bad_checksum=True)))
    rng = random.Random(20240611)
    garbage = bytes(rng.getrandbits(8) for _ in range(8 * KIB))
    assert garbage[:2] != b"\x1f\x8b" and garbage[:4] != b"\x28\xb5\x2f\xfd"
    reject("garbage.bin", "not a readable tar archive", garbage)
    reject("gzip-garbage.tar.gz", "its gzip stream is damaged", b"\x1f\x8b" + garbage[:4 * KIB])
    payload = bytes(rng.getrandbits(8) for _ in range(64 * KIB))
    full = gz(archive(entry(b"f", payload)))
    reject("gzip-truncated.tar.gz", "truncated", full[: len(full) // 2])
    reject("zstd-garbage.tar.zst", "its zstd stream is damaged", b"\x28\xb5\x2f\xfd" + garbage[:4 * KIB])
    two = archive(good, entry(b"g", b"world\n"))
    reject("truncated-in-header.tar", "not a readable tar archive: it is truncated", two[: 2 * BLOCK + 200])
    reject("truncated-in-data.tar", "entry 'big' is cut short: the archive ends inside its data",
           entry(b"big", payload)[: BLOCK + 3000])
    reject("invalid-size-field.tar", "a header has an invalid size field",
           archive(header(b"f", raw_size=b"0000000001x\0")))
    reject("negative-base256-size.tar", "a header has an invalid size field",
           archive(header(b"f", raw_size=size_field(-512))))
    reject("file-1TiB-no-data.tar",
           "holds 1099511627776 bytes, more than the limit of %d bytes for one file (--limit file=N raises it)"
           % DEFAULT_FILE_LIMIT,
           header(b"huge", size=TIB) + b"\0" * 1024)


def bombs(out):
    # 2 GiB of zeros in one file, about 2 MB of gzip. Refused by the byte
    # limit, and by the file limit, each before a byte of data is read.
    size = 2 * GIB
    bomb = os.path.join(out, "gzip-bomb-2GiB.tar.gz")
    with open(bomb, "wb") as f:
        gzip_of_zeros(header(b"zeros", size=size), size, 2 * BLOCK, f)
    CASES.append(("gzip-bomb-2GiB.tar.gz", "reject", "bytes=100M",
                  "brings the files to 2147483648 bytes, more than the limit of 104857600 bytes"
                  " (--limit bytes=N raises it)", None))
    link_or_copy(bomb, os.path.join(out, "gzip-bomb-2GiB-file-limit.tar.gz"))
    CASES.append(("gzip-bomb-2GiB-file-limit.tar.gz", "reject", "file=100M",
                  "holds 2147483648 bytes, more than the limit of 104857600 bytes for one file", None))

    # The same kind of bomb, each past the ratio limit of compressed
    # sources: zstd at 32,768 times (200 MiB from 6 KB, under every other
    # default), gzip at its 1,032 times, with the ratio lowered.
    size = 200 * MIB
    reject("zstd-bomb-200MiB.tar.zst",
           "its zstd stream expands to more than 1000 times its size",
           zstd_of_zeros(header(b"zeros", size=size), size + 1024))
    link_or_copy(bomb, os.path.join(out, "gzip-bomb-2GiB-ratio.tar.gz"))
    CASES.append(("gzip-bomb-2GiB-ratio.tar.gz", "reject", "ratio=100",
                  "its gzip stream expands to more than 100 times its size", None))

    # One 1 MiB file and 70,000 hardlinks to it: 70,001 MiB counted, past
    # the default 64 GiB (65,536 MiB) at the 65,536th link.
    with gzip.GzipFile(os.path.join(out, "hardlink-bomb.tar.gz"), "wb", compresslevel=6, mtime=0) as f:
        f.write(entry(b"big", b"\0" * MIB))
        batch = []
        for i in range(70_000):
            batch.append(header(b"links/%05d" % i, b"1", link=b"big"))
            if len(batch) == 4096:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch) + b"\0" * 1024)
    CASES.append(("hardlink-bomb.tar.gz", "reject", "-",
                  "entry 'links/65535' brings the files to %d bytes, more than the limit of %d bytes"
                  % (65537 * MIB, DEFAULT_BYTES_LIMIT), None))

    reject("entry-count-bomb.tar.gz",
           "entry 'e/01000' is entry number 1001, more than the limit of 1000 entries (--limit entries=N raises it)",
           gz(archive(*(header(b"e/%05d" % i) for i in range(3000)))), limits="entries=1000")


def hostile_text():
    evil = b"evil\x1b]0;pwned\x07\nnext line\x1b[31mred"
    reject("control-chars-name.tar", "entry 'evil\\u{1b}]0;pwned\\u{7}\\nnext line\\u{1b}[31mred' is a fifo",
           archive(pax([(b"path", evil)]), entry(b"harmless", typ=b"6")))
    # A long name of escape sequences: escaped and shortened in the middle.
    reject("control-chars-long-name.tar", "more]",
           archive(pax([(b"path", b"\x1b[2J\x1b[H" * 2000)]), entry(b"harmless", b"x\n")))
    reject("control-chars-link.tar", "is a hardlink to '\\u{1b}[2Jgone\\u{7}'",
           archive(pax([(b"linkpath", b"\x1b[2Jgone\x07")]), entry(b"h", typ=b"1", link=b"x")))


def accepted():
    case("setuid-setgid-sticky.tar", "accept", "-",
         "modes bin/su=755 bin/sg=755 share/both=644 share/sticky=644 tmp=755",
         with_tarfile([(info("bin/su", mode=0o4755), b"#!/bin/sh\n"),
                       (info("bin/sg", mode=0o2711), b"#!/bin/sh\n"),
                       (info("share/both", mode=0o6644), b"both\n"),
                       (info("share/sticky", mode=0o1644), b"sticky\n"),
                       (info("tmp", tarfile.DIRTYPE, 0o1777), b"")]))
    name = b"caf\xe9-\xff\xfe"
    case("non-utf8-name.tar", "accept", "-", "file-hex " + name.hex(),
         archive(entry(name, b"latin-1\n"), entry(b"ok", b"ok\n")))


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        with open(src, "rb") as a, open(dst, "wb") as b:
            b.write(a.read())


# 100,000 levels with the depth limit raised: the path limit, which cannot
# be raised past PATH_MAX, still refuses it before anything is staged.
# (Seen, when the path limit could be raised: refused, but late, with a
# bare "cannot create directory '<store>/tmp/stage-…/a/a/…': File name too
# long".)
RAISED_DEEP = ("reject", "depth=200000", "entry 'a/a/a/")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: build-corpus.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    self_check_gzip_of_zeros()
    escapes()
    special_entries()
    limits_and_extensions()
    damaged()
    bombs(out)
    hostile_text()
    accepted()
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "case names repeat"
    lines = ["# file\toutcome\tlimits\texpect (see build-corpus.py)"]
    for file, outcome, limits, expect, data in CASES:
        assert "\t" not in expect and "\n" not in expect
        if data is not None:
            with open(os.path.join(out, file), "wb") as f:
                f.write(data)
        size = os.path.getsize(os.path.join(out, file))
        assert size < 5 * MIB, "%s is %d bytes" % (file, size)
        lines.append("\t".join([file, outcome, limits, expect]))
    with open(os.path.join(out, "expected.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("%d archives in %s" % (len(CASES), out))


if __name__ == "__main__":
    main()

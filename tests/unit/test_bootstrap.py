"""Unit tests for hoist.image.bootstrap.

The busybox tests build a real tree from the host's busybox-static package (no network
when it is installed). The debian tests exercise everything but debootstrap itself:
mirror selection, the mount guard and the cleanup, on hand-made trees.
"""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest

from hoist.errors import HoistError, InvalidArgument, Unavailable
from hoist.image import bootstrap as B


# ----------------------------------------------------------------- names and helpers


def test_supported_lists_both_images():
    assert B.supported() == ["busybox", "debian:bookworm"]


@pytest.mark.parametrize("name, ref", [
    ("busybox", "busybox:latest"),
    ("busybox:latest", "busybox:latest"),
    ("debian", "debian:bookworm"),
    ("debian:bookworm", "debian:bookworm"),
    ("debian:12", "debian:bookworm"),
])
def test_normalise_accepts_aliases(name, ref):
    assert B.normalise(name) == ref


@pytest.mark.parametrize("name", ["alpine", "debian:trixie", "busybox:1.36", "", "ubuntu:22.04"])
def test_invalid_names_raise_invalid_argument(tmp_path, name):
    with pytest.raises(InvalidArgument) as e:
        B.bootstrap_rootfs(name, str(tmp_path))
    # The message tells the user what would have worked.
    assert "busybox" in str(e.value) and "debian:bookworm" in str(e.value)
    assert os.listdir(tmp_path) == []


def test_non_empty_destination_is_refused(tmp_path):
    (tmp_path / "leftover").write_text("x")
    with pytest.raises(InvalidArgument, match="not empty"):
        B.bootstrap_rootfs("busybox", str(tmp_path))


def test_missing_destination_is_refused(tmp_path):
    with pytest.raises(InvalidArgument, match="not a directory"):
        B.bootstrap_rootfs("busybox", str(tmp_path / "nope"))


@pytest.mark.parametrize("dpkg_arch, expected", [
    ("amd64", ("amd64", "")),
    ("arm64", ("arm64", "v8")),
    ("armhf", ("arm", "v7")),
    ("i386", ("386", "")),
    ("ppc64el", ("ppc64le", "")),
    ("s390x", ("s390x", "")),
    ("riscv64", ("riscv64", "")),
])
def test_go_arch_from_dpkg(dpkg_arch, expected):
    assert B.go_arch(dpkg_arch) == expected


@pytest.mark.parametrize("machine, expected", [
    ("x86_64", ("amd64", "")),
    ("aarch64", ("arm64", "v8")),
    ("armv7l", ("arm", "v7")),
    ("i686", ("386", "")),
    ("ppc64le", ("ppc64le", "")),
])
def test_go_arch_from_machine(machine, expected):
    assert B.go_arch(None, machine) == expected


def test_rfc3339_is_utc_with_z():
    assert B.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert B.rfc3339(1700000000) == "2023-11-14T22:13:20Z"


def test_run_streams_lines_and_reports_failure():
    lines: list[str] = []
    with pytest.raises(Unavailable) as e:
        B._run(["sh", "-c", "echo one; echo two >&2; exit 3"], lines.append)
    assert lines == ["one", "two"]
    assert "exit status 3" in str(e.value) and "two" in str(e.value)


def test_run_missing_program_is_unavailable():
    with pytest.raises(Unavailable):
        B._run(["/nonexistent/hoist-test-tool"], lambda s: None)


# --------------------------------------------------------------------------- busybox


def _bootstrap_busybox(dest) -> B.BootstrapResult:
    dest.mkdir()
    try:
        return B.bootstrap_rootfs("busybox", str(dest))
    except Unavailable as e:
        pytest.skip(f"busybox-static is neither installed nor downloadable: {e}")


@pytest.fixture(scope="module")
def busybox_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bb") / "rootfs"
    result = _bootstrap_busybox(root)
    return root, result


def test_busybox_binary_runs(busybox_root):
    root, _ = busybox_root
    out = subprocess.run([str(root / "bin" / "busybox"), "echo", "ok"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n"


def test_busybox_sh_runs(busybox_root):
    root, _ = busybox_root
    out = subprocess.run([str(root / "bin" / "sh"), "-c", "echo ok"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n"


def test_busybox_applets_are_hardlinks_in_bin(busybox_root):
    root, _ = busybox_root
    busybox = os.stat(root / "bin" / "busybox")
    ls = os.lstat(root / "bin" / "ls")
    assert stat.S_ISREG(ls.st_mode)
    assert (ls.st_dev, ls.st_ino) == (busybox.st_dev, busybox.st_ino)
    # Applets busybox installs under usr/bin, sbin and usr/sbin are in /bin too.
    for name in ("wget", "ip", "chroot", "[", "sh"):
        assert os.path.samefile(root / "bin" / name, root / "bin" / "busybox"), name
    # Every entry in /bin is the one binary, and nothing lives elsewhere.
    entries = os.listdir(root / "bin")
    assert len(entries) > 100
    assert busybox.st_nlink == len(entries)
    assert not os.path.exists(root / "usr" / "bin")
    assert not os.path.exists(root / "linuxrc")


def test_busybox_passwd_group_shadow(busybox_root):
    root, _ = busybox_root
    passwd = {line.split(":")[0]: line.split(":")
              for line in (root / "etc" / "passwd").read_text().splitlines()}
    assert passwd["root"][2:4] == ["0", "0"]
    assert passwd["root"][5:] == ["/root", "/bin/sh"]
    assert passwd["nobody"][2:4] == ["65534", "65534"]
    groups = {line.split(":")[0]: line.split(":")
              for line in (root / "etc" / "group").read_text().splitlines()}
    assert groups["root"][2] == "0"
    assert groups["nogroup"][2] == "65534"
    for name in ("daemon", "bin", "sys", "adm", "tty", "disk", "lp", "mail", "kmem",
                 "wheel", "cdrom", "dialout", "floppy", "audio", "tape", "video",
                 "www-data", "netdev", "users"):
        assert name in groups, name
    # Every user's primary group exists.
    gids = {g[2] for g in groups.values()}
    assert all(p[3] in gids for p in passwd.values())
    shadow = (root / "etc" / "shadow").read_text().splitlines()
    assert shadow[0].startswith("root:*:")
    assert {s.split(":")[0] for s in shadow} == set(passwd)
    assert stat.S_IMODE(os.stat(root / "etc" / "shadow").st_mode) == 0o600
    assert (root / "etc" / "nsswitch.conf").read_text() == "hosts: files dns\n"
    # Left to the runtime.
    for name in ("hosts", "hostname", "resolv.conf"):
        assert not (root / "etc" / name).exists()


def test_busybox_directories(busybox_root):
    root, _ = busybox_root
    modes = {
        "": 0o755, "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755,
        "root": 0o700, "tmp": 0o1777, "usr": 0o755, "var": 0o755,
        "var/spool/mail": 0o755, "var/www": 0o755, "proc": 0o755, "sys": 0o755,
    }
    for rel, mode in modes.items():
        st = os.lstat(root / rel)
        assert stat.S_ISDIR(st.st_mode), rel
        assert stat.S_IMODE(st.st_mode) == mode, rel
    assert os.listdir(root / "dev") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can chown to root")
def test_busybox_everything_owned_by_root(busybox_root):
    root, _ = busybox_root
    for dirpath, dirnames, filenames in os.walk(root):
        for n in [""] + dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            assert (st.st_uid, st.st_gid) == (0, 0), os.path.join(dirpath, n)


def test_busybox_config(busybox_root):
    _, result = busybox_root
    assert result.reference == "busybox:latest"
    cfg = result.config
    assert cfg["os"] == "linux"
    assert cfg["architecture"] == B.go_arch(B._host_dpkg_arch())[0]
    assert cfg["architecture"] not in ("x86_64", "aarch64")
    assert cfg["created"].endswith("Z") and "T" in cfg["created"]
    assert cfg["config"] == {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
    }
    assert "rootfs" not in cfg and "history" not in cfg
    assert result.created_by.startswith("hoist image bootstrap busybox (busybox-static ")


def _listing(root) -> list[tuple]:
    """Everything a layer tar would record about each path, in a stable order."""
    out = []
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in [""] + sorted(filenames) + dirnames:
            path = os.path.join(dirpath, n)
            if n == "" and path != os.path.join(str(root), ""):
                continue  # directories are listed once, from their parent
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                # Hard links are recorded as links to the first path seen.
                first = inodes.setdefault((st.st_dev, st.st_ino), rel)
                if first == rel:
                    with open(path, "rb") as f:
                        content = hashlib.sha256(f.read()).hexdigest()
                else:
                    content = f"link:{first}"
            elif stat.S_ISLNK(st.st_mode):
                content = f"symlink:{os.readlink(path)}"
            out.append((rel, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns,
                        st.st_size, content))
    return out


def test_busybox_bootstrap_is_deterministic(tmp_path, busybox_root):
    first_root, first = busybox_root
    second = _bootstrap_busybox(tmp_path / "second")
    assert _listing(first_root) == _listing(tmp_path / "second")
    assert first == second


def test_busybox_mtimes_are_all_the_package_mtime(busybox_root):
    root, result = busybox_root
    mtimes = {os.lstat(os.path.join(d, n)).st_mtime
              for d, dirs, files in os.walk(root) for n in dirs + files}
    mtimes.add(os.lstat(root).st_mtime)
    assert len(mtimes) == 1
    assert B.rfc3339(int(mtimes.pop())) == result.config["created"]


def test_busybox_honours_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    result = _bootstrap_busybox(tmp_path / "r")
    assert result.config["created"] == "2009-02-13T23:31:30Z"
    assert os.lstat(tmp_path / "r" / "etc" / "passwd").st_mtime == 1234567890
    assert os.lstat(tmp_path / "r").st_mtime == 1234567890


def test_busybox_unavailable_when_not_installed_and_download_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "_installed_package", lambda package: None)

    def failing_run(argv, log, *, cwd=None):
        raise Unavailable(f"{argv[0]} failed: no network")

    monkeypatch.setattr(B, "_run", failing_run)
    with pytest.raises(Unavailable, match="apt-get install busybox-static"):
        B.bootstrap_rootfs("busybox", str(tmp_path))


# ------------------------------------------------------------------- debian: sources


def test_parse_one_line_sources():
    text = """
# deb http://commented.example/debian bookworm main
deb http://mirror.example/debian bookworm main contrib # trailing comment
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://opts.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
"""
    assert B.parse_sources_list(text) == [
        ("http://mirror.example/debian", ["bookworm"]),
        ("http://opts.example/debian", ["bookworm"]),
        ("http://security.example/debian-security", ["bookworm-security"]),
    ]


def test_parse_deb822_sources():
    text = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://one.example/debian
 http://two.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
"""
    assert B.parse_deb822_sources(text) == [
        ("http://one.example/debian", ["bookworm", "bookworm-updates"]),
        ("http://two.example/debian", ["bookworm", "bookworm-updates"]),
    ]


def test_pick_mirror_prefers_bookworm_entry():
    sources = [
        ("http://security.example/debian-security", ["bookworm-security"]),
        ("http://trixie.example/debian", ["trixie"]),
        ("http://local.example/debian/", ["bookworm", "bookworm-updates"]),
    ]
    assert B.pick_mirror(sources) == "http://local.example/debian"


def test_pick_mirror_accepts_other_debian_suites():
    assert B.pick_mirror([("https://m.example/debian", ["stable"])]) == "https://m.example/debian"


def test_pick_mirror_falls_back_to_deb_debian_org():
    assert B.pick_mirror([]) == B.DEFAULT_MIRROR == "http://deb.debian.org/debian"
    # An Ubuntu mirror does not carry bookworm; a mirror+ URI is not for debootstrap.
    assert B.pick_mirror([("http://archive.ubuntu.com/ubuntu", ["jammy"]),
                          ("mirror+file:/etc/apt/mirrors.txt", ["bookworm"]),
                          ("http://sec.example/debian-security", ["bookworm-security"])]
                         ) == B.DEFAULT_MIRROR


def test_host_mirror_is_a_url():
    assert B.host_mirror().startswith(("http://", "https://", "file:"))


def test_debian_unavailable_without_tools(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "_find_tool", lambda name: None)
    with pytest.raises(Unavailable, match="apt-get install debootstrap"):
        B.bootstrap_rootfs("debian:12", str(tmp_path))


# -------------------------------------------------------------------- debian: mounts


def test_mounts_under_parses_mountinfo(tmp_path):
    root = str(tmp_path)
    info = "\n".join([
        f"30 1 0:5 / {root} rw - tmpfs tmpfs rw",                      # root itself: allowed
        f"31 30 0:6 / {root}/proc rw - proc proc rw",
        f"32 30 0:7 / {root}/dev/pts rw - devpts devpts rw",
        f"33 30 0:8 / {root}/my\\040dir rw - tmpfs tmpfs rw",          # escaped space
        f"34 1 0:9 / {root}-other/proc rw - proc proc rw",             # a sibling, not inside
        "35 1 0:10 / /proc rw - proc proc rw",
    ])
    assert sorted(B.mounts_under(root, info)) == sorted(
        [f"{root}/proc", f"{root}/dev/pts", f"{root}/my dir"])
    # Deepest first, so nested mounts are detached before their parents.
    assert B.mounts_under(root, info)[0] == f"{root}/dev/pts"


def test_clean_refuses_while_something_is_mounted(tmp_path, monkeypatch):
    root = tmp_path
    (root / "dev").mkdir()
    (root / "dev" / "null").write_text("")
    monkeypatch.setattr(B, "_read_mountinfo",
                        lambda: f"40 1 0:5 / {root}/dev rw - devtmpfs udev rw\n")
    calls = []

    def fake_umount(target, flags=0):
        calls.append(target)
        raise OSError(16, "busy")

    monkeypatch.setattr(B.linux, "umount", fake_umount)
    with pytest.raises(HoistError, match="still mounted"):
        B.clean_debian_rootfs(str(root))
    assert calls == [f"{root}/dev"]
    assert (root / "dev" / "null").exists()


# ------------------------------------------------------------------- debian: cleanup


def _fake_debootstrap_tree(root):
    def write(rel, text=""):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    (root / "dev" / "pts").mkdir(parents=True)
    if os.geteuid() == 0:
        os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        write("dev/null")
    os.symlink("/proc/self/fd", root / "dev" / "fd")
    (root / "proc").mkdir()
    write("var/cache/apt/archives/bash_5.2_amd64.deb", "deb")
    write("var/cache/apt/archives/partial/half.deb", "deb")
    (root / "var/cache/apt/archives/lock").write_text("")
    write("var/cache/apt/pkgcache.bin", "cache")
    write("var/cache/apt/srcpkgcache.bin", "cache")
    write("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "r")
    write("var/lib/apt/lists/lock")
    write("var/lib/apt/lists/partial/x_Packages", "p")
    write("etc/hostname", "buildhost\n")
    write("etc/resolv.conf", "nameserver 10.0.0.1\n")
    write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    write("etc/debian_version", "12.11\n")
    write("var/log/dpkg.log", "lots of lines\n")
    write("var/log/apt/history.log", "history\n")
    write("var/lib/dpkg/status", "Package: bash\n")
    write("var/lib/dpkg/status-old", "Package: bash\n")
    write("var/cache/debconf/config.dat-old", "old\n")


def test_clean_debian_rootfs(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    _fake_debootstrap_tree(root)
    # A link out of the tree must be removed, never followed.
    os.symlink(str(outside), root / "dev" / "escape")

    lines: list[str] = []
    B.clean_debian_rootfs(str(root), lines.append)

    assert os.listdir(root / "dev") == []
    assert (outside / "precious").read_text() == "keep me"
    assert (root / "proc").is_dir() and (root / "sys").is_dir()
    assert sorted(os.listdir(root / "var/cache/apt")) == ["archives"]
    assert sorted(os.listdir(root / "var/cache/apt/archives")) == ["lock", "partial"]
    assert os.listdir(root / "var/cache/apt/archives/partial") == []
    assert os.listdir(root / "var/lib/apt/lists") == ["partial"]
    assert os.listdir(root / "var/lib/apt/lists/partial") == []
    for rel in ("etc/hostname", "etc/resolv.conf", "etc/machine-id",
                "var/log/dpkg.log", "var/log/apt/history.log"):
        assert (root / rel).read_text() == "", rel
    assert stat.S_IMODE(os.stat(root / "etc/resolv.conf").st_mode) == 0o644
    assert (root / "etc/debian_version").read_text() == "12.11\n"
    assert (root / "var/lib/dpkg/status").read_text() == "Package: bash\n"
    assert not (root / "var/lib/dpkg/status-old").exists()
    assert not (root / "var/cache/debconf/config.dat-old").exists()
    assert lines  # progress was reported


def test_clean_replaces_resolv_conf_symlink(tmp_path):
    (tmp_path / "etc").mkdir()
    os.symlink("../run/systemd/resolve/stub-resolv.conf", tmp_path / "etc" / "resolv.conf")
    B.clean_debian_rootfs(str(tmp_path))
    p = tmp_path / "etc" / "resolv.conf"
    assert not p.is_symlink() and p.read_text() == ""

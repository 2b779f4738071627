import base64, io, json, tarfile, docker, pytest

SCRIPT = ("rm /etc/shadow; rm -rf /home; mkdir /home; touch /home/x; ln -s / /etc/evil; "
          "ln -s /nonexist/foo /etc/dangle; ln -s ../../../.. /tmp/up; mkdir -p /data/sub; echo hi > /data/f; "
          "sed -i s/root/ROOT/ /etc/passwd; rm -rf /var/spool; mkfifo /data/fifo")

def probe(d):
    c = docker.DockerClient(base_url=d.host, version="1.41")
    try:
        c.containers.get("probe").remove(force=True)
    except Exception:
        pass
    ctr = c.containers.run("busybox", ["sh", "-c", SCRIPT], detach=True, network_mode="none", name="probe")
    ctr.wait()
    out = {"diff": ctr.diff()}
    api = c.api
    for p in ["/", "/etc/", "/etc/.", "/etc/evil", "/etc/evil/", "/etc/dangle", "/tmp/up", "/nonexist", "/etc/passwd/", "/data/f", "/data/fifo", "", "/data/./sub/../f"]:
        r = api.head(api._url("/containers/{0}/archive", ctr.id), params={"path": p})
        h = r.headers.get("X-Docker-Container-Path-Stat")
        out["HEAD " + p] = (r.status_code, json.loads(base64.b64decode(h)) if h else r.text)
    for p in ["/", "/etc/.", "/etc/evil", "/etc/evil/", "/tmp/up/", "/data", "/data/"]:
        r = api._get(api._url("/containers/{0}/archive", ctr.id), params={"path": p}, stream=True)
        if r.status_code == 200:
            names = tarfile.open(fileobj=io.BytesIO(r.content)).getnames()[:4]
        else:
            names = r.text
        out["GET " + p] = (r.status_code, r.headers.get("Content-Type"), names)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("f"); ti.size = 1; tf.addfile(ti, io.BytesIO(b"x"))
    for p in ["/nonexist", "/data/f", "/data/", "/etc/evil", "/tmp/up"]:
        r = api._put(api._url("/containers/{0}/archive", ctr.id), params={"path": p}, data=buf.getvalue())
        out["PUT " + p] = (r.status_code, r.text)
    for p in ["/data"]:
        r = api._put(api._url("/containers/{0}/archive", ctr.id), params={"path": p, "noOverwriteDirNonDir": "1"}, data=buf.getvalue().replace(b"f\0", b"sub\0", 1))
        out["PUT nooverwrite " + p] = (r.status_code, r.text)
    r = api._get(api._url("/containers/{0}/export", ctr.id), stream=True)
    out["export"] = (r.status_code, r.headers.get("Content-Type"), tarfile.open(fileobj=io.BytesIO(r.content)).getnames()[:5])
    r = api._get(api._url("/containers/{0}/archive", "nosuch"), params={"path": "/"})
    out["nosuch"] = (r.status_code, r.text)
    ctr.remove()
    return out

def test_probe(dockerd, hoistd):
    if dockerd.docker("image", "inspect", "busybox", check=False).returncode != 0:
        dockerd.docker("load", input=hoistd.hoist("save", "busybox").stdout)
    a, b = probe(dockerd), probe(hoistd)
    for k in a:
        mark = "   " if a[k] == b.get(k) else "!!!"
        print(mark, k, "\n  docker:", a[k], "\n  hoist: ", b.get(k))
